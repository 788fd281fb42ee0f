"""Config loading: typed values, defaults, and errors that name file, line and field."""

from pathlib import Path

import pytest

from conftest import cli
from crawler.config import ConfigError, load_config, parse_config

GOOD = """\
state_dir: state
targets:
  - id: xinyingbao
    name: 重庆鑫盈宝网络科技有限公司
    aliases: [鑫盈宝]
    credit_code: 91500116MA5U0000XX
    business: p2p
    urls: [https://www.example.com/]
  - id: local
    name: 本地测试
    business: other
    urls: ["http://127.0.0.1:8080/index.html"]
    max_pages: 5
    render: never
    allow_private_networks: true
"""


def errors_of(text: str, tmp_path: Path) -> str:
    path = tmp_path / "patrol.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_good_config_is_typed_frozen_and_resolved(tmp_path):
    path = tmp_path / "patrol.yaml"
    path.write_text(GOOD, encoding="utf-8")
    config = load_config(path)
    first, local = config.targets
    assert first.allowed_domains == ("www.example.com",)
    assert (first.max_pages, first.max_depth, first.render) == (200, 3, "auto")
    assert local.allowed_domains == ("127.0.0.1:8080",), "an explicit port narrows the scope"
    assert config.state_dir == tmp_path / "state"
    assert config.db_url == f"sqlite:///{tmp_path / 'state' / 'finpatrol.db'}"
    assert config.private_scope() == ("127.0.0.1:8080",)
    with pytest.raises(Exception):
        first.max_pages = 3


def test_wrong_type_names_field_path_and_line(tmp_path):
    message = errors_of(GOOD.replace("max_pages: 5", "max_pages: many"), tmp_path)
    assert "line 13: targets[1].max_pages: expected a whole number, got 'many'" in message


def test_unknown_business_lists_the_choices(tmp_path):
    message = errors_of(GOOD.replace("business: p2p", "business: lottery"), tmp_path)
    assert "line 7" in message and "targets[0].business" in message
    assert "expected 'p2p', 'crowdfunding'," in message and "got 'lottery'" in message


def test_missing_urls(tmp_path):
    text = GOOD.replace("    urls: [https://www.example.com/]\n", "")
    message = errors_of(text, tmp_path)
    assert "targets[0].urls" in message and "missing" in message


def test_bad_url_is_named_with_index(tmp_path):
    message = errors_of(GOOD.replace("https://www.example.com/", "ftp://x"), tmp_path)
    assert "targets[0].urls[0]" in message and "http(s) URL" in message and "line 8" in message


def test_duplicate_ids_are_named_at_the_second_id(tmp_path):
    message = errors_of(GOOD.replace("id: local", "id: xinyingbao"), tmp_path)
    assert "line 9: targets[1].id: duplicate target id 'xinyingbao'" in message


def test_a_duplicate_id_is_reported_with_the_other_errors_of_the_file(tmp_path):
    """Validation stops before the cross-checks when an entry is incomplete; the ids are checked
    as written then, so one run of check-config names every independent error."""
    config = tmp_path / "patrol.yaml"
    config.write_text("""\
targets:
  - id: a1
    name: 甲
    business: p2p
    urls: [https://a.example.com/]
  - id: a1
    business: p2p
schedules:
  jobs:
    - {id: nightly, targets: [a1, a2], interval: 1h}
alerts:
  targets:
    b1: []
state_dir: state
state_dir: other
""", encoding="utf-8")
    result = cli("check-config", "--config", str(config))
    assert result.returncode == 1, result.stdout
    assert result.stderr.splitlines() == [f"Error: {config}: line 6: targets[1].name: required setting is missing",
                                          f"{config}: line 6: targets[1].urls: required setting is missing",
                                          f"{config}: line 6: targets[1].id: duplicate target id 'a1'",
                                          f"{config}: line 10: schedules.jobs[0].targets[1]: unknown target 'a2' "
                                          "(known: a1)",
                                          f"{config}: line 13: alerts.targets.b1: unknown target 'b1'; known: a1",
                                          f"{config}: line 15: state_dir: duplicate key 'state_dir' "
                                          "(first given on line 14)"]
    alone = GOOD.replace("id: local", "id: xinyingbao").replace("    name: 本地测试\n", "")
    message = errors_of(alone, tmp_path)
    assert "line 9: targets[1].id: duplicate target id 'xinyingbao'" in message
    assert "line 9: targets[1].name: required setting is missing" in message


def test_digits_where_text_is_expected_say_to_quote_them(tmp_path):
    config = tmp_path / "patrol.yaml"
    config.write_text(GOOD.replace("credit_code: 91500116MA5U0000XX", "credit_code: 915001161234567890")
                      .replace("    render: never\n", "    render: never\n    credit_code: 9.15001E+17\n")
                      + "smtp:\n  password_env: 123456\n", encoding="utf-8")
    result = cli("check-config", "--config", str(config))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {config}: line 6: targets[0].credit_code: expected text, got a number: YAML reads unquoted digits "
        'as a number; write it in quotes, e.g. credit_code: "915001161234567890"',
        f"{config}: line 15: targets[1].credit_code: expected text, got a number: YAML read it as a number with a "
        "decimal point or exponent, which may already have lost digits; write the value in quotes exactly as it "
        'should be, e.g. credit_code: "…"',
        f"{config}: line 18: smtp.password_env: expected text, got a number: YAML reads unquoted digits as a number; "
        'write it in quotes, e.g. password_env: "…"',  # a password put where its variable's name goes
    ]
    config.write_text(GOOD.replace("credit_code: 91500116MA5U0000XX", 'credit_code: "915001161234567890"'),
                      encoding="utf-8")
    assert load_config(config).targets[0].credit_code == "915001161234567890"


@pytest.mark.parametrize("old, new, expected", [
    ("max_pages: 5", "max_pages: 5\n    max_pages: 6", "line 14: targets[1].max_pages: duplicate key 'max_pages' (first given on line 13)"),
    ("state_dir: state", "state_dir: state\nstate_dir: other", "line 2: state_dir: duplicate key 'state_dir' (first given on line 1)"),
])
def test_duplicate_keys_are_errors_not_last_wins(tmp_path, old, new, expected):
    assert expected in errors_of(GOOD.replace(old, new), tmp_path)


def test_merged_keys_may_be_overridden():
    text = GOOD.replace("  - id: local", "  - <<: {max_pages: 1, render: never}\n    id: local").replace("    render: never\n", "")
    assert parse_config(text).targets[1].max_pages == 5


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:abc/", "valid host and port"),
    ("http://127.0.0.1:99999/", "valid host and port"),
    ("http://127.0.0.1:0/", "port from 1 to 65535"),
    ("http://127.0.0.1/a b.html", "space or control character"),
    ("http://127.0.0.1/a\tb.html", "space or control character"),
])
def test_bad_start_url_is_named_even_with_allowed_domains(tmp_path, url, expected):
    text = GOOD.replace('"http://127.0.0.1:8080/index.html"', f'"{url}"').replace(
        "max_pages: 5", "max_pages: 5\n    allowed_domains: [127.0.0.1]")
    message = errors_of(text, tmp_path)
    assert "line 12: targets[1].urls[0]" in message and expected in message
    assert "at least 1 item" not in message, "the bad item is the problem, not the list length"


@pytest.mark.parametrize("entry, hint", [
    ("https://example.com/", "not a URL, got 'https://example.com/': write example.com"),
    ("*.example.com", "write example.com (it covers its subdomains too)"),
    (".example.com", "write example.com (it covers its subdomains too)"),
    ("example.com/p2p", "without a path, got 'example.com/p2p': write example.com"),
    ("example.com:http", "expected a host name like example.com, or host:port"),
    ("exa mple.com", "expected a host name like example.com, or host:port"),
])
def test_allowed_domains_must_be_bare_hosts(tmp_path, entry, hint):
    text = GOOD.replace("max_pages: 5", f'max_pages: 5\n    allowed_domains: [127.0.0.1, "{entry}"]')
    message = errors_of(text, tmp_path)
    assert "line 14: targets[1].allowed_domains[1]" in message and hint in message


def test_allowed_domains_accepts_hosts_ports_and_ips(tmp_path):
    path = tmp_path / "patrol.yaml"
    path.write_text(GOOD.replace("max_pages: 5", "max_pages: 5\n    allowed_domains: [Example.COM., 127.0.0.1:8080, 中国银行.中国]"),
                    encoding="utf-8")
    assert load_config(path).targets[1].allowed_domains == ("example.com", "127.0.0.1:8080", "中国银行.中国")


@pytest.mark.parametrize("url, expected", [
    ("notaurl", "expected an SQLAlchemy URL"),
    ("postgresql//x", "expected an SQLAlchemy URL"),
    ("postgresql://u:secret@127.0.0.1:port/db", "expected an SQLAlchemy URL"),
    ("postgres://u@127.0.0.1/db", "unknown database kind 'postgres'"),
])
def test_bad_database_url_is_a_config_error(tmp_path, url, expected):
    message = errors_of(GOOD + f"database_url: {url}\n", tmp_path)
    assert "line 16: database_url" in message and expected in message
    assert "secret" not in message, "a password in the URL is not echoed"


def test_state_dir_that_is_a_file_is_a_config_error(tmp_path):
    (tmp_path / "state").write_text("not a directory", encoding="utf-8")
    message = errors_of(GOOD, tmp_path)
    assert "line 1: state_dir: expected a directory" in message


def test_home_is_expanded_in_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "ca.pem").write_text("certificate", encoding="utf-8")
    path = tmp_path / "patrol.yaml"
    path.write_text(GOOD.replace("state_dir: state", "state_dir: ~/fp\nrules_files: [~/rules.yaml]\n"
                                 "elasticsearch: {hosts: ['https://127.0.0.1:9200'], ca_certs: ~/ca.pem}"),
                    encoding="utf-8")
    config = load_config(path)
    assert config.state_dir == tmp_path / "home" / "fp"
    assert config.rules_files == (tmp_path / "home" / "rules.yaml",)
    assert config.elasticsearch.ca_certs == tmp_path / "home" / "ca.pem"


def test_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "patrol.yaml"
    path.write_bytes(GOOD.encode("gbk"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "line 4:" in str(info.value) and "save the file as UTF-8" in str(info.value)


def test_wrong_shapes_are_named_in_yaml_words(tmp_path):
    message = errors_of(GOOD.replace("urls: [https://www.example.com/]", "urls: https://www.example.com/")
                        .replace("render: never", "render: never\n    enabled: maybe"), tmp_path)
    assert "line 8: targets[0].urls: expected a list, got 'https://www.example.com/'" in message
    assert "line 15: targets[1].enabled: expected true or false, got 'maybe'" in message
    assert "Input should" not in message and "tuple" not in message


@pytest.mark.parametrize("old, new, expected", [
    ("state_dir: state", "state_dir: state\ndownload_timeout: 0", "line 2: download_timeout: expected a number ≥ 1, got 0"),
    ("max_pages: 5", "max_pages: 0", "line 13: targets[1].max_pages: expected a number ≥ 1, got 0"),
    ("max_pages: 5", "max_depth: 51", "line 13: targets[1].max_depth: expected a number ≤ 50, got 51"),
    ("state_dir: state", "state_dir: state\nyield_ceiling: 0.0", "line 2: yield_ceiling: expected a number > 0, got 0"),
    ("state_dir: state", "state_dir: state\nalerts: {opinion: {threshold: 0}}",
     "line 2: alerts.opinion.threshold: expected a number ≥ 1, got 0"),
    ("state_dir: state", "state_dir: state\nalerts: {opinion: {spike_factor: 0.5}}",
     "line 2: alerts.opinion.spike_factor: expected a number > 1, got 0.5"),
    ("state_dir: state", "state_dir: state\ngrading: {window_days: 5000}",
     "line 2: grading.window_days: expected a number ≤ 3650, got 5000"),
])
def test_numbers_out_of_bounds_are_named_in_yaml_words(tmp_path, old, new, expected):
    message = errors_of(GOOD.replace(old, new), tmp_path)
    assert expected in message and "Input should" not in message


@pytest.mark.parametrize("value, expected", [
    ("3.5", "expected a whole number, got 3.5"),
    ('"three"', "expected a whole number, got 'three'"),
    ("true", "expected a whole number, got true"),
    ("[1]", "expected a whole number, got a list"),
])
def test_whole_numbers_are_named_in_yaml_words(tmp_path, value, expected):
    message = errors_of(GOOD.replace("max_pages: 5", f"max_pages: {value}"), tmp_path)
    assert f"line 13: targets[1].max_pages: {expected}" in message


def test_true_or_false_is_not_read_as_a_number(tmp_path):
    message = errors_of(GOOD.replace("state_dir: state", "state_dir: state\nyield_ceiling: yes\n"
                                     "alerts: {opinion: {threshold: true}}"), tmp_path)
    assert "line 2: yield_ceiling: expected a number, got true" in message
    assert "line 3: alerts.opinion.threshold: expected a whole number, got true" in message


def test_every_problem_of_the_file_is_reported_at_once_in_file_order(tmp_path):
    """A true or false given for a number is not held back until the other errors are fixed."""
    message = errors_of(GOOD.replace("business: p2p", "business: p2pp\n    max_depth: yes")
                        .replace("max_pages: 5", "max_pages: true"), tmp_path)
    lines = message.splitlines()
    assert "line 7: targets[0].business: expected 'p2p'" in lines[0]
    assert lines[1].endswith("line 8: targets[0].max_depth: expected a whole number, got true")
    assert lines[2].endswith("line 14: targets[1].max_pages: expected a whole number, got true")
    assert len(lines) == 3


def test_a_misspelt_required_key_is_one_problem(tmp_path):
    message = errors_of(GOOD.replace("urls: [https://www.example.com/]", "url: [https://www.example.com/]"), tmp_path)
    assert "line 8: targets[0].url: unknown setting 'url': did you mean 'urls'? (a required setting)" in message
    assert "required setting is missing" not in message
    message = errors_of(GOOD.replace("    urls: [https://www.example.com/]\n", ""), tmp_path)
    assert "targets[0].urls: required setting is missing" in message, "a key left out is still named"


@pytest.mark.parametrize("old, new, expected", [
    ("max_pages: 5", "max_page: 5", "line 13: targets[1].max_page: unknown setting 'max_page': did you mean 'max_pages'?"),
    ("state_dir: state", "state_dir: state\nalerts: {opinion: {threshhold: 3}}",
     "line 2: alerts.opinion.threshhold: unknown setting 'threshhold': did you mean 'threshold'?"),
    ("state_dir: state", "state_dir: state\nrouting: {units: {cbrc: {name: 银监, email: [a@b.cn]}}}",
     "line 2: routing.units.cbrc.email: unknown setting 'email': did you mean 'emails'?"),
    ("state_dir: state", "state_dir: state\nstatedir: x", "line 2: statedir: unknown setting 'statedir': did you mean 'state_dir'?"),
])
def test_unknown_key_suggests_a_close_key_of_the_same_mapping(tmp_path, old, new, expected):
    assert expected in errors_of(GOOD.replace(old, new), tmp_path)


@pytest.mark.parametrize("old, new", [
    ("state_dir: state", "state_dir: state\ncolour: blue"),
    ("state_dir: state", "state_dir: state\nmax_page: 5"),  # a target's key, not a top-level one
])
def test_unknown_key_without_a_close_key_gets_no_guess(tmp_path, old, new):
    message = errors_of(GOOD.replace(old, new), tmp_path)
    assert "line 2: " in message and "unknown setting '" in message and "did you mean" not in message


def test_a_default_unit_takes_emails_alone_and_a_new_unit_needs_a_name(tmp_path):
    config = parse_config(GOOD.replace("state_dir: state", "state_dir: state\nrouting:\n  units:\n"
                                       "    cbrc: {emails: [duty@cbrc.test]}"), tmp_path / "patrol.yaml")
    cbrc = config.routing.units["cbrc"]
    assert cbrc.emails == ("duty@cbrc.test",) and cbrc.name == "江津银监分局", "the default name is kept"
    message = errors_of(GOOD.replace("state_dir: state", "state_dir: state\nrouting:\n  units:\n"
                                     "    newunit: {emails: [a@b.test]}"), tmp_path)
    assert "line 3: routing.units: unit newunit needs a name" in message


def test_durations_and_clock_times_name_what_was_written_in_yaml_words(tmp_path):
    message = errors_of(GOOD.replace("state_dir: state", "state_dir: state\nalerts:\n  renotify_after: true\n"
                                     "  digest_time: [8]"), tmp_path)
    assert "line 3: alerts.renotify_after: expected a duration like 90, '15m', '12h' or '7d', got true" in message
    assert "line 4: alerts.digest_time: expected a time of day like '08:30', got a list" in message


def test_broken_yaml_gives_line_and_column(tmp_path):
    message = errors_of("targets:\n  - id: [unclosed\n    name: x\n", tmp_path)
    assert "invalid YAML" in message and "line 3" in message


def test_bad_target_id_and_credit_code(tmp_path):
    message = errors_of(GOOD.replace("id: local", "id: Local Site").replace("MA5U0000XX", "short"), tmp_path)
    assert "targets[1].id" in message and "targets[0].credit_code" in message


def test_missing_file_and_top_level_list(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_config("- a\n- b\n")


def test_list_keys_written_empty_are_empty_lists(tmp_path):
    path = tmp_path / "patrol.yaml"
    path.write_text("state_dir: state\n# filled from the spreadsheet later\ntargets:\nrules_files:\n", encoding="utf-8")
    config = load_config(path)
    assert config.targets == () and config.rules_files == ()


def test_ca_certs_is_relative_to_the_config_file_and_must_exist(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "patrol.yaml"
    path.write_text(GOOD + "elasticsearch:\n  hosts: ['https://127.0.0.1:9200']\n  ca_certs: es-ca.crt\n",
                    encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"line 18: elasticsearch.ca_certs: no such file: {tmp_path / 'conf' / 'es-ca.crt'}" in str(info.value)
    (tmp_path / "conf" / "es-ca.crt").write_text("certificate", encoding="utf-8")
    assert load_config(path).elasticsearch.ca_certs == tmp_path / "conf" / "es-ca.crt"


def test_an_alias_inside_its_own_anchor_is_named_not_a_recursion_error(tmp_path):
    message = errors_of("state_dir: state\ntargets: &all\n  - *all\n", tmp_path)
    assert "line 2: the node anchored here contains an alias of itself" in message


def test_a_start_url_outside_allowed_domains_is_an_error(tmp_path):
    message = errors_of(GOOD.replace("urls: [https://www.example.com/]",
                                     "urls: [https://www.example.com/, https://www.example.org/]\n"
                                     "    allowed_domains: [example.com]"), tmp_path)
    assert "line 8: targets[0].urls[1]: https://www.example.org/ is outside allowed_domains (example.com)" in message


def test_a_misspelt_category_id_in_alert_rules_is_named_with_the_id_meant(tmp_path):
    message = errors_of(GOOD + "alerts:\n  rules:\n    - {categories: [guaranteed_returns], action: immediate}\n"
                        "    - {categories: ['*'], action: digest}\n  opinion:\n    categories: [colapse_signal]\n"
                        "grading:\n  rules:\n    - {grade: 高风险, when: {categories: [ilegal_fundraising]}}\n",
                        tmp_path)
    assert ("line 18: alerts.rules[0].categories: unknown category id 'guaranteed_returns': "
            "did you mean 'guaranteed_return'?") in message
    assert "line 21: alerts.opinion.categories: unknown category id 'colapse_signal': did you mean 'collapse_signal'?" \
        in message
    assert ("line 24: grading.rules[0].when.categories: unknown category id 'ilegal_fundraising': "
            "did you mean 'illegal_fundraising'?") in message
    assert "alerts.rules[1]" not in message, "'*' stands for any category"


def test_a_misspelt_routing_key_or_unit_is_an_error_at_its_own_field(tmp_path):
    message = errors_of(GOOD + "routing:\n  business: {insurence: [finance_office]}\n  categories:\n"
                        "    ilegal_fundraising: {units: [police], min_risk: medium}\n"
                        "    mass_incident:\n      units: [opinion, polise]\n  opinion_units: [opinion, newunit]\n",
                        tmp_path)
    assert "line 17: routing.business.insurence: unknown business type 'insurence': did you mean 'insurance'?" \
        in message
    assert ("line 19: routing.categories.ilegal_fundraising: unknown category id 'ilegal_fundraising': "
            "did you mean 'illegal_fundraising'?") in message
    assert "line 21: routing.categories.mass_incident.units[1]: unknown unit id 'polise': did you mean 'police'?" \
        in message
    assert ("line 22: routing.opinion_units[1]: unknown unit id 'newunit'; known: cbrc, finance_office, pboc, "
            "market_regulator, police, opinion, office, housing, operator; define new units under routing.units") \
        in message


def test_alert_rules_of_an_unknown_target_are_an_error_channels_and_sources_by_their_stored_id(tmp_path):
    listings = ("channels:\n  - {id: sousuo, url: 'https://s.example/?q={keyword}', selectors: {item: li, link: a}}\n"
                "sources:\n  - {id: bbs, kind: feed, url: 'https://bbs.example/feed.xml'}\n")
    rules = ("alerts:\n  targets:\n    local: [{action: ignore}]\n    channel:sousuo: [{action: ignore}]\n"
             "    source:bbs: [{action: ignore}]\n")
    path = tmp_path / "patrol.yaml"
    path.write_text(GOOD + listings + rules, encoding="utf-8")
    assert list(load_config(path).alerts.targets) == ["local", "channel:sousuo", "source:bbs"]
    message = errors_of(GOOD + listings + rules + "    xinyingbo: [{action: ignore}]\n    sousuo: [{action: ignore}]\n"
                        "    compliantbank: [{action: ignore}]\n", tmp_path)
    assert "line 25: alerts.targets.xinyingbo: unknown target 'xinyingbo': did you mean 'xinyingbao'?" in message
    assert "line 26: alerts.targets.sousuo: unknown target 'sousuo': did you mean 'channel:sousuo'?" in message
    assert ("line 27: alerts.targets.compliantbank: unknown target 'compliantbank'; "
            "known: xinyingbao, local, channel:sousuo, source:bbs") in message


def test_relative_paths_resolve_against_the_config_file_as_absolute_paths(tmp_path, monkeypatch):
    """A relative config path (`cd dir; finpatrol serve`) still gives absolute paths: the scheduler's
    crawl subprocess runs in another directory and must find the same state_dir."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "patrol.yaml").write_text(GOOD.replace("state_dir: state", "state_dir: state\n"
                                                                "rules_files: [rules.yaml]"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf/patrol.yaml"))
    assert config.state_dir.is_absolute() and config.state_dir == tmp_path / "conf" / "state"
    assert config.rules_files == (tmp_path / "conf" / "rules.yaml",)
    assert config.db_url == f"sqlite:///{tmp_path / 'conf' / 'state' / 'finpatrol.db'}"
    monkeypatch.chdir(tmp_path / "conf")
    assert load_config(Path("patrol.yaml")).state_dir == tmp_path / "conf" / "state"
    monkeypatch.chdir(tmp_path)
    for url, expected in (("sqlite:///db/patrol.db", f"sqlite:///{tmp_path / 'conf' / 'db' / 'patrol.db'}"),
                          ("sqlite:////srv/patrol.db", "sqlite:////srv/patrol.db"),
                          ("postgresql://u:p@127.0.0.1/finpatrol", "postgresql://u:p@127.0.0.1/finpatrol")):
        (tmp_path / "conf" / "patrol.yaml").write_text(GOOD + f"database_url: {url!r}\n", encoding="utf-8")
        assert load_config(Path("conf/patrol.yaml")).db_url == expected, "a SQLite file, like state_dir"
