"""``finpatrol dossier TARGET_ID``: one institution's file (一户一档) as HTML, Markdown or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from crawler.commands.common import config_option, console, load_or_exit, open_db, writing
from crawler.config_yaml import unknown_id
from crawler.store.runs import stored_target, unconfigured_targets


@click.command()
@config_option
@click.argument("target_id")
@click.option("--format", "fmt", type=click.Choice(("html", "md", "json")), default="html", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here (charts go to <stem>-charts/ next to it); default: stdout.")
def dossier(config_file, target_id, fmt, out):
    """Identity, patrol coverage, hits with evidence, yields, changes, opinion and risk grade of one target."""
    from crawler.reports.data import dossier as build
    from crawler.reports.render import render_dossier

    config = load_or_exit(config_file)
    with open_db(config) as db:
        target = _target(config, db, target_id)
        data = build(config, db, target)
    if fmt == "json":
        text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
        if out:
            with writing(out):
                out.write_text(text + "\n", encoding="utf-8")
            console.print(f"dossier of {target_id} → {out}")
        else:
            click.echo(text)
        return
    rendered = render_dossier(data, fmt, out)
    if out is None:
        click.echo(rendered.text)
        return
    with writing(out, out.parent):  # the charts go beside it
        files = rendered.write(out)
    console.print(f"dossier of {target_id} ({data['grade']['grade']}) → {out} (+{len(files) - 1} chart file(s))")


def _target(config, db, target_id: str):
    """The configured target, else one removed from the config whose records remain."""
    try:
        return config.target(target_id)
    except KeyError:
        pass
    target = stored_target(db, target_id)
    if target is None:
        configured = [t.id for t in config.targets]
        known = configured + [removed for removed, *_ in unconfigured_targets(db, configured)]
        raise click.ClickException(unknown_id("target id", target_id, known))
    return target


COMMANDS = (dossier,)
