"""``finpatrol es setup | status | sync | kibana-import``: the search cluster.

All need an ``elasticsearch:`` block in the config; credentials come from
``FINPATROL_ES_API_KEY`` or ``FINPATROL_ES_USERNAME``/``FINPATROL_ES_PASSWORD``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from elastic_transport import TransportError
from elasticsearch import ApiError
from rich.table import Table

from crawler.commands.common import config_option, console, emit_json, json_option, load_or_exit, open_db
from crawler.store import elastic_queue as queue
from crawler.store.elastic_client import describe, make_async_client
from crawler.store.elastic_kibana import import_saved_objects, KibanaError
from crawler.store.elastic_setup import MAPPINGS_DIR, setup as run_setup, status as cluster_status
from crawler.store.elastic_sync import push_pending


def es_config_or_exit(config):
    es_config = getattr(config, "elasticsearch", None)
    if es_config is None:
        raise click.ClickException(f"{config.source}: no elasticsearch: block (see docs/elasticsearch.md)")
    return es_config


async def _with_client(es_config, work):
    es = make_async_client(es_config)
    try:
        return await work(es)
    except (ApiError, TransportError) as e:
        raise click.ClickException(describe(e, es_config)) from None
    finally:
        await es.close()


@click.group()
def es():
    """Elasticsearch / OpenSearch: install mappings, show status, push pending documents."""


@es.command()
@config_option
@json_option
@click.option("--mappings", "mappings_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=MAPPINGS_DIR, show_default=True, help="Directory of templates and policies.")
def setup(config_file, as_json, mappings_dir):
    """Install or upgrade templates, the pages lifecycle policy and the aliases (idempotent)."""
    es_config = es_config_or_exit(load_or_exit(config_file))
    report = asyncio.run(_with_client(es_config, lambda es: run_setup(es, es_config, mappings_dir)))
    if as_json:
        emit_json(report)
        return
    table = Table(title="finpatrol es setup")
    for column in ("kind", "name", "version", "action"):
        table.add_column(column)
    for row in report:
        table.add_row(row["kind"], row["name"], str(row["version"] or "-"), row["action"])
    console.print(table)


@es.command()
@config_option
@json_option
def status(config_file, as_json):
    """Cluster health, template versions, documents per alias, and what is pending here."""
    config = load_or_exit(config_file)
    es_config = es_config_or_exit(config)
    with open_db(config) as db:
        local = {"pending": queue.counts(db), "rejections": queue.rejections(db, 10)}
    try:
        cluster = asyncio.run(_with_client(es_config, lambda es: cluster_status(es, es_config)))
        error = None
    except click.ClickException as e:
        cluster, error = None, e.message
    out = {"cluster": cluster, "error": error, **local}
    if as_json:
        emit_json([out])
    else:
        print_status(out)
    if error:
        raise SystemExit(1)


def print_status(out: dict) -> None:
    cluster = out["cluster"]
    if cluster:
        console.print(f"cluster {cluster['cluster']} ({cluster['distribution']} {cluster['version']}), "
                      f"health {cluster['health']}, lifecycle API {'yes' if cluster['lifecycle_api'] else 'no'}")
        table = Table()
        for column in ("family", "alias", "template file", "template cluster", "indices", "documents"):
            table.add_column(column)
        for family, row in cluster["families"].items():
            table.add_row(family, row["alias"], str(row["template_file"]), str(row["template_cluster"] or "missing"),
                          ", ".join(row["indices"]) or "-", str(row["documents"] if row["documents"] is not None else "-"))
        console.print(table)
    else:
        console.print(f"[bold red]cluster unavailable:[/] {out['error']}")
    states = {s for counts in out["pending"].values() for s in counts}
    total = {s: sum(c.get(s, 0) for c in out["pending"].values()) for s in ("pending", "indexed", "rejected")}
    console.print(f"documents here: {total['pending']} pending, {total['indexed']} indexed, {total['rejected']} rejected"
                  + ("" if states else " (nothing queued yet)"))
    for r in out["rejections"]:
        console.print(f"  rejected {r['kind']} {r['ref']}: {r['reason']}")


@es.command()
@config_option
@json_option
@click.option("--all", "everything", is_flag=True, help="Queue every page, hit and target first (backfill).")
@click.option("--retry-rejected", is_flag=True, help="Queue rejected documents again (after fixing the cause).")
def sync(config_file, as_json, everything, retry_rejected):
    """Push every pending document to the cluster; documents stay pending if it is down."""
    config = load_or_exit(config_file)
    es_config = es_config_or_exit(config)
    with open_db(config) as db:
        if everything:
            queue.enqueue_all(db)
        if retry_rejected:
            queue.retry_rejected(db)
        result = asyncio.run(_with_client(es_config, lambda es: push_pending(db, es, es_config, refresh=True)))
        left = sum(c.get("pending", 0) for c in queue.counts(db).values())
    row = {"acked": result.acked, "rejected": result.rejected, "deferred": result.deferred,
           "pending": left, "error": result.error}
    if as_json:
        emit_json([row])
    else:
        console.print(f"indexed {result.acked}, rejected {result.rejected}, still pending {left}")
        if result.error:
            console.print(f"[bold red]stopped:[/] {result.error}")
    if result.error:
        raise SystemExit(1)


@es.command("kibana-import")
@config_option
@click.option("--url", required=True, help="Kibana base URL, e.g. https://127.0.0.1:5601")
@click.option("--space", default=None, help="Kibana space id (default space when omitted).")
@click.option("--file", "ndjson", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=MAPPINGS_DIR / "kibana" / "finpatrol.ndjson", show_default=True)
def kibana_import(config_file, url, space, ndjson):
    """Import the data views, saved searches and dashboard through Kibana's saved-objects API."""
    config = load_or_exit(config_file)
    es_config = getattr(config, "elasticsearch", None)
    try:
        answer = import_saved_objects(url, ndjson, es_config, space=space)
    except KibanaError as e:
        raise click.ClickException(str(e)) from None
    console.print(f"imported {answer.get('successCount', 0)} saved objects into {url}")
    for error in answer.get("errors", []):
        console.print(f"  [red]{error.get('type')} {error.get('id')}:[/] {json.dumps(error.get('error'), ensure_ascii=False)}")


COMMANDS = (es,)
