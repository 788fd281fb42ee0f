"""The dependency directions of ARCHITECTURE.md, enforced by import-linter contracts."""

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_command_is_registered_with_the_module_that_defines_it():
    import importlib
    import pkgutil

    import crawler.commands
    from crawler.cli import COMMAND_MODULES

    defined = {}
    for info in pkgutil.iter_modules(crawler.commands.__path__):
        module = importlib.import_module(f"crawler.commands.{info.name}")
        defined.update({command.name: info.name for command in getattr(module, "COMMANDS", ())})
    assert defined == COMMAND_MODULES


def test_importing_the_cli_stays_light():
    """Extraction workers re-import ``crawler.cli`` as their __main__: it must not pull in the crawler."""
    probe = ("import sys, crawler.cli; heavy = ('scrapy', 'sqlalchemy', 'elasticsearch', 'twisted', 'apscheduler');"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=REPO).stdout.strip()
    assert loaded == "[]"


def test_no_spider_callback_returns_a_value_from_a_generator():
    """Scrapy drops such a value; the settings turn its per-response check off (WARN_ON_GENERATOR_RETURN_VALUE)."""
    import importlib
    import inspect
    import pkgutil

    import scrapy
    import spiders
    from scrapy.utils.misc import is_generator_with_return_value

    generators = []
    for info in pkgutil.iter_modules(spiders.__path__):
        module = importlib.import_module(f"spiders.{info.name}")
        for spider in vars(module).values():
            if inspect.isclass(spider) and issubclass(spider, scrapy.Spider) and spider.__module__ == module.__name__:
                generators += [f for _, f in inspect.getmembers(spider, inspect.isgeneratorfunction)]
    assert len(generators) >= 5
    assert [f.__qualname__ for f in generators if is_generator_with_return_value(f)] == []
