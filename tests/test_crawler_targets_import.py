"""``finpatrol targets import``: the office's spreadsheet into patrol.yaml, or a clear error and no change."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import cli, json_lines

CONFIG = """\
# Patrol config kept by the office: comments must survive an import.
state_dir: state
download_timeout: 5  # seconds
targets:
  # registered before the spreadsheet existed
  - id: old
    name: 老机构
    business: other
    urls: ["http://127.0.0.1:9/"]
"""
ZH_CSV = """\
编号,名称,简称,业态,网址,最大页数
xyb,重庆鑫盈宝网络科技有限公司,鑫盈宝；盈宝,P2P网络借贷,http://127.0.0.1:8001/,20
hbzc,华北众筹,,股权众筹,http://127.0.0.1:8002/ http://127.0.0.1:8003/,
"""
EN_CSV = """\
id,name,business,urls
a1,Alpha Pay,payment,http://127.0.0.1:8101/
b2,Beta Insure,insurance,http://127.0.0.1:8102/
"""


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "patrol.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def write_csv(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "targets.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def imported(config: Path, csv_file: Path) -> dict[str, dict]:
    """Import, which must succeed; the targets that ``targets list --json`` then shows, by id."""
    result = cli("targets", "import", str(csv_file), "--config", str(config))
    assert result.returncode == 0, result.stderr
    listed = cli("targets", "list", "--json", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    return {t["id"]: t for t in json_lines(listed.stdout)}


def rejected(config: Path, csv_file: Path) -> str:
    """Import, which must fail cleanly: non-zero exit, no traceback, config and its directory untouched."""
    before = config.read_bytes() if config.is_file() else None
    listing = sorted(os.listdir(config.parent))
    result = cli("targets", "import", str(csv_file), "--config", str(config))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert (config.read_bytes() if config.is_file() else None) == before
    assert sorted(os.listdir(config.parent)) == listing, "no temporary file may be left behind"
    return result.stderr


def test_chinese_headers_import_into_existing_config_keeping_comments(tmp_path, config):
    targets = imported(config, write_csv(tmp_path, ZH_CSV))
    assert list(targets) == ["old", "xyb", "hbzc"]
    xyb, hbzc = targets["xyb"], targets["hbzc"]
    assert (xyb["name"], xyb["business"], xyb["max_pages"]) == ("重庆鑫盈宝网络科技有限公司", "p2p", 20)
    assert xyb["aliases"] == ["鑫盈宝", "盈宝"]
    assert hbzc["business"] == "crowdfunding"
    assert hbzc["urls"] == ["http://127.0.0.1:8002/", "http://127.0.0.1:8003/"]
    assert config.read_text(encoding="utf-8").startswith(CONFIG), "comments and layout are kept"
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_reimport_updates_by_id_instead_of_duplicating(tmp_path, config):
    csv_file = write_csv(tmp_path, EN_CSV)
    imported(config, csv_file)
    write_csv(tmp_path, EN_CSV.replace("Alpha Pay", "Alpha Payments"))
    result = cli("targets", "import", str(csv_file), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "0 target(s) added, 2 updated" in result.stdout
    listed = json_lines(cli("targets", "list", "--json", "--config", str(config)).stdout)
    assert [t["id"] for t in listed] == ["old", "a1", "b2"]
    assert listed[1]["name"] == "Alpha Payments"


def test_a_new_id_for_a_known_institution_is_imported_with_a_warning_naming_the_id_meant(tmp_path, config):
    imported(config, write_csv(tmp_path, EN_CSV))
    typo = write_csv(tmp_path, "id,name,business,urls\na-1,Alpha Pay,payment,http://127.0.0.1:8101/\n"
                               "c3,Gamma Fund,other,http://127.0.0.1:8102\n")
    result = cli("targets", "import", str(typo), "--config", str(config))
    assert result.returncode == 0 and "2 target(s) added" in result.stdout, result.stderr
    assert ("warning: targets[3].id: 'a-1' has the name of 'a1' (targets[1]): one institution under two ids "
            "splits its hits and dossier; if 'a-1' is a typo, use 'a1'") in result.stderr, result.stderr
    assert "targets[4].id: 'c3' has the start URL of 'b2' (targets[2])" in result.stderr, "with or without a /"
    checked = cli("check-config", "--config", str(config))
    assert checked.returncode == 0 and "'a-1' has the name of 'a1'" in checked.stderr
    assert "has the" not in cli("targets", "import", str(write_csv(tmp_path, EN_CSV)), "--config",
                                str(tmp_path / "fresh.yaml")).stderr


def test_targets_list_shows_imported_targets(tmp_path, config):
    imported(config, write_csv(tmp_path, EN_CSV))
    result = cli("targets", "list", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "3 target(s)" in result.stdout
    for shown in ("Alpha Pay", "Beta Insure", "http://127.0.0.1:8101/", "老机构"):
        assert shown in result.stdout


def test_import_keeps_the_config_file_mode(tmp_path, config):
    config.chmod(0o640)
    imported(config, write_csv(tmp_path, EN_CSV))
    assert stat.S_IMODE(config.stat().st_mode) == 0o640


def test_empty_targets_key_is_imported_into_as_a_list(tmp_path, config):
    config.write_text("state_dir: state\n# filled from the spreadsheet\ntargets:\n", encoding="utf-8")
    for command in (("targets", "list"), ("patrol",)):
        before = cli(*command, "--config", str(config))
        assert "targets import FILE.csv" in before.stdout + before.stderr and "Traceback" not in before.stderr
    assert before.returncode == 1, "a patrol with no targets must fail"
    targets = imported(config, write_csv(tmp_path, EN_CSV))
    assert list(targets) == ["a1", "b2"]
    assert "# filled from the spreadsheet" in config.read_text(encoding="utf-8")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "gb18030"])
def test_excel_csv_encodings(tmp_path, config, encoding):
    targets = imported(config, write_csv(tmp_path, ZH_CSV, encoding))
    assert targets["xyb"]["name"] == "重庆鑫盈宝网络科技有限公司"
    assert targets["xyb"]["aliases"] == ["鑫盈宝", "盈宝"]


def test_render_is_read_in_any_case(tmp_path, config):
    text = "id,name,business,urls,render\nr1,Render One,p2p,http://127.0.0.1:8201/,Always\n"
    assert imported(config, write_csv(tmp_path, text))["r1"]["render"] == "always"


def test_excel_unicode_text_is_utf16_tab_separated(tmp_path, config):
    text = ZH_CSV.replace(",", "\t").replace("\n", "\r\n")
    targets = imported(config, write_csv(tmp_path, text, "utf-16", name="targets.txt"))
    assert targets["xyb"]["name"] == "重庆鑫盈宝网络科技有限公司"
    assert targets["hbzc"]["urls"] == ["http://127.0.0.1:8002/", "http://127.0.0.1:8003/"]


def test_undecodable_csv_names_file_and_line(tmp_path, config):
    csv_file = write_csv(tmp_path, EN_CSV)
    csv_file.write_bytes(csv_file.read_bytes() + b"c3,\x80\x80,p2p,http://127.0.0.1:1/\n")
    message = rejected(config, csv_file)
    assert str(csv_file) in message and "line 4" in message and "UTF-8" in message


def test_yaml_syntax_error_names_line_and_column(tmp_path, config):
    config.write_text("state_dir: state\ntargets: [\n  - id: x\n", encoding="utf-8")
    message = rejected(config, write_csv(tmp_path, EN_CSV))
    assert str(config) in message and "line 3" in message and "column" in message
    assert "invalid YAML" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "directory"),
        ("- id: x\n- id: y\n".encode(), "mapping"),
        ("state_dir: state\n# 目标\ntargets: []\n".encode("gbk"), "UTF-8"),
        (b"targets: 5\n", "targets: expected a list"),
    ],
    ids=["directory", "top-level-list", "gbk-config", "targets-not-a-list"],
)
def test_unusable_config_is_a_clear_error(tmp_path, content, expected):
    config = tmp_path / "patrol.yaml"
    if content is None:
        config.mkdir()
    else:
        config.write_bytes(content)
    message = rejected(config, write_csv(tmp_path, EN_CSV))
    assert str(config) in message and expected in message


def test_problem_of_the_config_itself_is_named_at_its_own_line(tmp_path, config):
    config.write_text(CONFIG.replace('["http://127.0.0.1:9/"]', '[\n      "http://127.0.0.1:9/",\n    ]')
                      + "    max_pages: lots\n", encoding="utf-8")
    message = rejected(config, write_csv(tmp_path, EN_CSV))
    assert str(config) in message and "line 12" in message and "targets[0].max_pages" in message


def test_duplicate_id_names_the_csv_rows_not_a_temporary_file(tmp_path, config):
    csv_file = write_csv(tmp_path, EN_CSV + "a1,Again,p2p,http://127.0.0.1:8103/\n")
    message = rejected(config, csv_file)
    assert ".tmp" not in message
    assert str(csv_file) in message and "line 4" in message and "'id'" in message and "line 2" in message


def test_bad_cell_names_csv_line_column_and_value(tmp_path, config):
    csv_file = write_csv(tmp_path, ZH_CSV.replace("股权众筹", "彩票"))
    message = rejected(config, csv_file)
    assert str(csv_file) in message and "line 3" in message and "'业态'" in message and "彩票" in message


def test_line_numbers_count_blank_lines_and_multiline_cells(tmp_path, config):
    text = (
        "id,name,business,urls\n"
        "\n"
        'a1,"Alpha\nPay",payment,http://127.0.0.1:8101/\n'
        "b2,Beta,payment,ftp://127.0.0.1/files\n"
    )
    message = rejected(config, write_csv(tmp_path, text))
    assert "line 5" in message and "'urls'" in message and "ftp://127.0.0.1/files" in message


def test_long_rejected_value_is_truncated(tmp_path, config):
    business = "lottery" * 100
    message = rejected(config, write_csv(tmp_path, f"id,name,business,urls\na1,A,{business},http://127.0.0.1:1/\n"))
    assert "line 2" in message and "'business'" in message and "lotterylottery" in message
    assert business not in message


def test_two_columns_for_one_field_is_an_error_naming_both(tmp_path, config):
    csv_file = write_csv(tmp_path, "id,编号,name,business,urls\n,a1,Alpha,p2p,http://127.0.0.1:1/\n")
    message = rejected(config, csv_file)
    assert str(csv_file) in message and "'id'" in message and "'编号'" in message


def test_missing_and_unknown_columns_are_named(tmp_path, config):
    message = rejected(config, write_csv(tmp_path, "id,name,urls,电话\na1,A,http://127.0.0.1:1/,123\n"))
    assert "电话" in message
    message = rejected(config, write_csv(tmp_path, "id,name,urls\na1,A,http://127.0.0.1:1/\n"))
    assert "business" in message


def test_blank_columns_are_ignored_but_a_value_under_no_column_is_an_error(tmp_path, config):
    targets = imported(config, write_csv(tmp_path, "id,name,,business,urls,\na1,A,,p2p,http://127.0.0.1:1/,\n"))
    assert targets["a1"]["urls"] == ["http://127.0.0.1:1/"]
    csv_file = write_csv(tmp_path, "id,name,business,urls\nb2,B,p2p,http://127.0.0.1:1/,stray\n")
    message = rejected(config, csv_file)
    assert str(csv_file) in message and "line 2, column 5" in message and "'stray'" in message


def test_excel_workbook_is_not_csv(tmp_path, config):
    workbook = tmp_path / "targets.xlsx"
    workbook.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    message = rejected(config, workbook)
    assert str(workbook) in message and "CSV" in message


def test_failed_import_into_missing_config_creates_nothing(tmp_path):
    config = tmp_path / "patrol.yaml"
    message = rejected(config, write_csv(tmp_path, EN_CSV.replace("payment", "lottery")))
    assert "lottery" in message and not config.exists()
    first = cli("targets", "import", str(write_csv(tmp_path, EN_CSV)), "--config", str(config))
    assert first.returncode == 0 and "did not exist: created it" in first.stdout, "said, so a typo shows"
    assert list(imported(config, write_csv(tmp_path, EN_CSV))) == ["a1", "b2"]


def test_number_cells_are_checked_in_the_words_of_the_config(tmp_path, config):
    csv_file = write_csv(tmp_path, "id,name,business,urls,max_pages,max_depth\n"
                                   "a1,Alpha,p2p,http://127.0.0.1:1/,0,three\n")
    message = rejected(config, csv_file)
    assert "line 2, column 'max_pages': expected a number ≥ 1, got 0" in message
    assert "line 2, column 'max_depth': expected a whole number, got 'three'" in message


def test_an_all_digit_credit_code_is_kept_as_text_and_a_spreadsheets_number_is_refused_with_the_fix(tmp_path, config):
    code = "915001161234567890"
    csv_file = write_csv(tmp_path, f"id,name,business,urls,统一社会信用代码\na1,Alpha,p2p,http://127.0.0.1:1/,{code}\n")
    assert imported(config, csv_file)["a1"]["credit_code"] == code
    assert f"credit_code: '{code}'" in config.read_text(encoding="utf-8"), "written quoted: YAML would read a number"
    checked = cli("check-config", "--config", str(config))
    assert checked.returncode == 0, checked.stderr
    excel = write_csv(tmp_path, "id,name,business,urls,统一社会信用代码\nb2,Beta,p2p,http://127.0.0.1:2/,9.15001E+17\n",
                      name="excel.csv")
    message = rejected(config, excel)
    assert ("line 2, column '统一社会信用代码': expected an 18-character 统一社会信用代码 (digits and capital letters), "
            "got '9.15001E+17': a spreadsheet shows a long number so, and keeps only 15 of its digits; format the "
            "column as text, enter the codes again and export") in message
