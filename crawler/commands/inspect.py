"""``finpatrol hits``, ``search``, ``show`` and ``reindex``: what the patrols found."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from crawler.commands.common import (
    ROW_COUNT, config_option, console, emit_json, filter_options, json_option, load_or_exit, make_filters, open_db,
    shown_time,
)
from crawler.evidence.concerns import hit_concerns
from crawler.evidence.lifecycle import removal_capture
from crawler.store.queries import get_hit, list_contents, list_hits, predecessors
from crawler.store.search import with_state
from crawler.wording import published_time

RISK_STYLE = {"high": "bold red", "medium": "yellow", "low": "cyan", "none": "dim"}


def hits_table(rows: list[dict], config, every_url: bool = False) -> Table:
    table = Table(caption=f"times in {config.alerts.timezone}")
    for column in ("id", "target", "risk", "labels", "title", "url", "also at", "last seen", "state"):
        table.add_column(column, overflow="fold")
    for hit in rows:
        table.add_row(
            str(hit["id"]), hit["target"], f"[{RISK_STYLE[hit['risk']]}]{hit['risk']}[/]",
            ", ".join(hit["labels"]), escape(hit["title"][:40]), escape(hit["url"]), also_at(hit, every_url),
            shown_time(hit["last_seen"], config), hit_state(hit, config),
        )
    return table


def also_at(hit: dict, every_url: bool = False) -> str:
    """``+5 URLs`` on the row of a content shown on other URLs too; with ``every_url``, where
    each of its hits is a row, ``same as 30`` on all but its first hit (30)."""
    if every_url and hit["same_content_as"] not in (None, hit["id"]):
        return f"[dim]same as {hit['same_content_as']}[/]"
    more = len(hit["also_at"])
    return f"+{more} URL{'s' if more > 1 else ''}" if more else ""


REMOVED_BECAUSE = {"page_gone": "page gone", "claim_removed": "claim edited away"}
"""How ``hit_state`` says why a hit was rectified or taken down (``crawler.store.removal.WHY``)."""


def hit_state(hit: dict, config) -> str:
    """open, replaced (reworded: the hit that says it now), withdrawn (the rules changed, the
    page did not), taken down (a collapse or 维权 notice removed, or its page) or removed (its
    verdict left the page: rectified) since when (the office's day), with why: page gone, or
    claim (a taken-down notice) edited away."""
    def day(value: str) -> str:
        return shown_time(value, config)[:10]

    because = " (rules changed)" if hit.get("reclassified") else ""
    why = f" ({REMOVED_BECAUSE[hit['removed_reason']]})" if hit["removed_reason"] in REMOVED_BECAUSE else ""
    if hit["removed_at"] and hit.get("replaced_by"):
        return f"[yellow]replaced by hit {hit['replaced_by']}{because} {day(hit['removed_at'])}[/]"
    if hit["removed_at"] and because:
        return f"[yellow]withdrawn{because} {day(hit['removed_at'])}[/]"
    if hit["taken_down"]:  # a risk notice removed: not rectified
        return f"[red]taken down {day(hit['removed_at'])}{why.replace('claim', 'notice')}[/]"
    if hit["removed_at"]:
        return f"[green]removed {day(hit['removed_at'])}{why}[/]"
    return f"reopened {day(hit['reopened_at'])}" if hit["reopened_at"] else "open"


@click.command()
@config_option
@filter_options
@json_option
@click.option("--limit", type=ROW_COUNT, default=100, show_default=True,
              help="At most this many rows (with --json or --every-url: hits), newest first.")
@click.option("--every-url", is_flag=True,
              help="One row per hit, also for the URLs that show the same content as another.")
def hits(config_file, targets, category, risk, since, until, as_json, limit, every_url):
    """List hits (pages flagged by the classifier), newest first: last seen latest, then the larger id.

    Live hits of one target whose pages say the same (same text, same labels: a redirect, query
    variants) are one row, the first hit of that content, with how many more URLs show it
    (--every-url lists each). --json gives every hit, with same_content_as and also_at."""
    config = load_or_exit(config_file)
    with open_db(config) as db:
        filters = make_filters(config, targets, category, risk, since, until, db)
        rows = list_hits(db, filters, limit) if as_json or every_url else list_contents(db, filters, limit)
    if as_json:
        emit_json(rows)
    elif rows:
        console.print(hits_table(rows, config, every_url))
        more_may_follow(rows, limit)
    else:
        console.print("no hits match")


def more_may_follow(rows: list, limit: int) -> None:
    """A list cut at --limit says so (on stderr), so that it is not read as complete."""
    if len(rows) >= limit:
        click.echo(f"the first {limit} shown; more may match (--limit N)", err=True)


@click.command()
@click.argument("query")
@config_option
@filter_options
@json_option
@click.option("--limit", type=ROW_COUNT, default=20, show_default=True,
              help="At most this many pages, best match first.")
@click.option("--embedded", is_flag=True,
              help="Search the embedded index even when Elasticsearch is configured (it holds earlier versions).")
def search(query, config_file, targets, category, risk, since, until, as_json, limit, embedded):
    """Full-text search of patrolled pages (Chinese words segmented with jieba).

    A page that is gone, or whose hit was removed since, is still found (it is evidence)
    and says so. So is an earlier version of a page, for words the page no longer says
    (embedded index): marked as such, with when it was seen and the hit it had.
    """
    config = load_or_exit(config_file)
    filters = make_filters(config, targets, category, risk, since, until)
    with open_db(config) as db:
        if getattr(config, "elasticsearch", None) is not None and not embedded:
            from crawler.store.elastic_search import ClusterUnavailable, search_cluster

            try:
                results = search_cluster(config.elasticsearch, query, filters, limit)
            except ClusterUnavailable as e:
                raise click.ClickException(str(e)) from None
            earlier_only_embedded(db, query, filters)
        else:
            if db.index is None:
                raise click.ClickException("the embedded index needs a SQLite state DB")
            results = db.index.search(query, filters, limit)
            if missing := db.index.versions.missing():
                click.echo(f"{missing} earlier page versions are not searchable yet: run `finpatrol reindex` once",
                           err=True)
        results = with_state(db, results)
    if as_json:
        emit_json(results)
        return
    if not results:
        console.print(f"no page matches {query!r}")
    for r in results:
        labels = ", ".join(r["labels"]) or "no hit"
        state = result_state(r, config)
        console.print(f"[bold]{escape(r['title'] or r['url'])}[/]  [{RISK_STYLE[r['risk']]}]{r['risk']}[/] {labels}"
                      + earlier_version(r, config) + (f"  {state}" if state else ""))
        console.print(f"  {escape(r['url'])}  target={r['target']} hit={r['hit_id'] or '-'}")
        console.print("  " + escape(r["snippet"]).replace("【", "[reverse]【").replace("】", "】[/reverse]"))
    more_may_follow(results, limit)


def earlier_only_embedded(db, query: str, filters) -> None:
    """Say on stderr how many earlier versions of pages match too: the cluster holds pages as they
    are now, so words a platform edited away are found by the embedded index alone."""
    earlier = db.index.earlier_matches(query, filters) if db.index is not None else 0
    if earlier:
        match = "version also matches" if earlier == 1 else "versions also match"
        click.echo(f"{earlier} earlier page {match} (words a page no longer says; Elasticsearch holds"
                   " pages as they are now): `finpatrol search --embedded` shows them", err=True)


def earlier_version(result: dict, config) -> str:
    """``  earlier version, seen 2026-11-20 – 2026-11-25, hit 3`` (the office's days) for a result
    from words the page no longer says; "" for a page as it is now."""
    if result.get("current", True):
        return ""
    seen = " – ".join(shown_time(result[f"version_{end}_seen"], config)[:10] for end in ("first", "last"))
    had = f", hit {result['hit_id']}" if result["hit_id"] else ", no hit"
    return f"  [bold magenta]earlier version, seen {seen}{had}[/]"


def result_state(result: dict, config) -> str:
    """What became of a search result's page and hit since (the office's day), or "" while both are live:
    page gone, hit removed (rectified: its claim left the page, or the page went), replaced by a
    reworded hit, or withdrawn or replaced because the rules changed."""
    def day(value: str) -> str:
        return shown_time(value, config)[:10]

    parts = []
    because = " (rules changed)" if result["hit_reclassified"] else ""
    if result["gone_at"]:
        parts.append(f"[bold red]page gone {day(result['gone_at'])}[/]")
    if result["hit_removed_at"] and result["hit_replaced_by"]:
        parts.append(f"[yellow]hit replaced by hit {result['hit_replaced_by']}{because} "
                     f"{day(result['hit_removed_at'])}[/]")
    elif result["hit_removed_at"] and because:
        parts.append(f"[yellow]hit withdrawn{because} {day(result['hit_removed_at'])}[/]")
    elif result["hit_removed_at"] and result["hit_taken_down"]:
        parts.append(f"[red]hit taken down (a risk notice, not rectified) {day(result['hit_removed_at'])}[/]")
    elif result["hit_removed_at"]:
        parts.append(f"[green]hit removed (rectified) {day(result['hit_removed_at'])}[/]")
    return ", ".join(parts)


@click.command()
@config_option
@json_option
def reindex(config_file, as_json):
    """Rebuild the embedded search index from the stored pages and their earlier versions.

    Run it once after an upgrade whose notes say that words are cut differently:
    until then, pages indexed before it are found by the old words only. With
    Elasticsearch, `finpatrol es sync --all` afterwards sends the new words there.
    Also once after the upgrade that made earlier versions of pages searchable.
    """
    config = load_or_exit(config_file)
    with open_db(config) as db:
        if db.index is None:
            raise click.ClickException("the embedded index needs a SQLite state DB")
        if as_json:
            emit_json([{"pages": db.index.rebuild(), "versions": db.index.versions.rebuild()}])
            return
        with console.status("re-indexing pages…") as status:
            pages = db.index.rebuild(progress=lambda done: status.update(f"re-indexing pages… {done} done"))
            versions = db.index.versions.rebuild(
                progress=lambda done: status.update(f"re-indexing earlier versions… {done} done"))
    console.print(f"re-indexed {pages} pages and {versions} earlier versions")


@click.command()
@click.argument("hit_id", type=ROW_COUNT)
@config_option
@json_option
def show(hit_id, config_file, as_json):
    """One hit: the institution it concerns, the other URLs that show the same content, how a
    listing showed it, findings with the matched words marked, yields, page and patrol info."""
    config = load_or_exit(config_file)
    with open_db(config) as db:
        hit = get_hit(db, hit_id)
        if hit is None:
            raise click.ClickException(f"no hit with id {hit_id}")
        hit |= hit_concerns(db, hit_id) | {"removal_capture": removal_capture(db, hit_id)}
        replaced = predecessors(db, hit_id) if not as_json else []
    if as_json:
        emit_json([hit])
        return
    style = RISK_STYLE[hit["risk"]]
    console.print(f"[bold]hit {hit['id']}[/]  [{style}]{hit['risk']}[/] score {hit['score']}  {', '.join(hit['labels'])}")
    led = f"  → {escape(hit['final_url'])}" if hit["final_url"] != hit["url"] else ""  # redirected
    console.print(f"target {hit['target']}  {escape(hit['url'])}{led}")
    console.print(f"title  {escape(hit['title'])}")
    console.print(f"first seen {shown_time(hit['first_seen'], config)} (run {hit['first_run']}), "
                  f"last seen {shown_time(hit['last_seen'], config)} (run {hit['last_run']}), {config.alerts.timezone}")
    console.print(f"body sha256 {hit['sha256']}  context {hit['context'] or '-'}")
    run = f", in run {hit['removed_run']}" if hit["removed_at"] and hit["removed_run"] else ""
    console.print(f"state  {hit_state(hit, config)}{run}{shown_by(hit['removal_capture'])}")
    for earlier in replaced:
        console.print(replaces_line(earlier, hit["id"], config))
    console.print(f"concerns {concerns_line(hit['attributed_to'])}")
    for line in same_content_lines(hit):
        console.print(line)
    if hit["listed"]:
        console.print(f"listed {listed_line(hit['listed'], config)}")
    for f in hit["findings"]:
        state = "[dim]negated by " + escape(str(f.get("negated_by"))) + "[/]" if f.get("negated") else "[bold]asserted[/]"
        console.print(f"  • {f['category']} {escape('[' + f['rule_id'] + ']')} {state}: " + marked(f))
    for y in hit["yields"]:
        console.print(
            f"  ¥ {escape(y['text'])} → {y['low_annual_pct']:.2f}%–{y['high_annual_pct']:.2f}% a year"
            f" ({y['period']}{', promised' if y.get('promised') else ''})"
        )


def shown_by(capture: dict | None) -> str:
    """``, capture 12`` for the archived capture that shows a hit's removal (the 404/410 answer, or
    the page after it), with where the URL led then when it redirected."""
    if capture is None:
        return ""
    led = f" ({escape(capture['url'])} redirected to {escape(capture['final_url'])})" \
        if capture["final_url"] != capture["url"] else ""
    return f", capture {capture['id']}{led}"


def replaces_line(earlier: dict, hit_id: int, config) -> str:
    """``replaces hit 33, first seen 2026-11-30 03:05 (run 1)``: a hit whose claims this one makes
    in other words (through the hit that replaced it, when not directly), and since when."""
    through = f" (through hit {earlier['replaced_by']})" if earlier["replaced_by"] != hit_id else ""
    return (f"replaces hit {earlier['id']}{through}, first seen {shown_time(earlier['first_seen'], config)}"
            f" (run {earlier['first_run']})")


def same_content_lines(hit: dict) -> list[str]:
    """The other URLs (and hits) that show the same content as the hit, if any: what the same
    claim looks like elsewhere on the target's site (a redirect, query variants)."""
    if not hit["also_at"]:
        return []
    first = hit["same_content_as"]
    whose = "" if first == hit["id"] else f" (first as hit {first})"
    more = len(hit["also_at"])
    lines = [f"same content also at {more} more URL{'s' if more > 1 else ''}{whose}:"]
    return lines + [f"  hit {other['id']}  {escape(other['url'])}" for other in hit["also_at"]]


def concerns_line(attributed: dict | None) -> str:
    """The institution a hit concerns and why, e.g.
    ``xinyingbao 重庆鑫盈宝… (统一社会信用代码 …), 名称提及 (name): 鑫盈宝×2``."""
    if attributed is None:
        return "no registered institution (not attributed)"
    code = f" (统一社会信用代码 {attributed['credit_code']})" if attributed["credit_code"] else ""
    detail = f": {attributed['detail']}" if attributed["detail"] else ""
    return escape(f"{attributed['id']} {attributed['name']}{code}, "
                  f"{attributed['reason_zh']} ({attributed['reason']}){detail}")


def listed_line(listed: dict, config) -> str:
    """How a channel or source listed the page: where, keyword, rank, ad slot, advertiser, author, time."""
    parts = [f"{listed['origin']} {listed['origin_id']}"]
    if listed["keyword"]:
        parts.append(f"keyword {listed['keyword']}")
    if listed["rank"] is not None:
        parts.append(f"rank {listed['rank']}" + (", ad" if listed["is_ad"] else ""))
    for label in ("advertiser", "author"):
        if listed[label]:
            parts.append(f"{label} {listed[label]}")
    if listed["posted_at"]:
        parts.append(f"posted {published_time(listed['posted_at'], config.alerts.timezone)}")
    if listed["replies"] is not None:
        parts.append(f"{listed['replies']} replies")
    parts.append(f"{'entry on' if listed['slot'] else 'linked from'} {listed['list_url']}")
    return escape(", ".join(parts))


def marked(finding: dict) -> str:
    """The finding's snippet on one line, its matched words in 【】 (kept when piped) and reverse video."""
    snippet, words = " ".join((finding.get("snippet") or finding["text"]).split()), finding["text"]
    return escape(snippet).replace(escape(words), f"[reverse]【{escape(words)}】[/reverse]", 1)


COMMANDS = (hits, search, show, reindex)
