"""farm.toml: read, checked with located findings, and merged under flags and environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from farm.config import ConfigError, load_config
from farm.jobs import Farm
from farm.settings import REPO_ROOT, resolve_server, resolve_settings

EXAMPLE = REPO_ROOT / "infra" / "config" / "farm.toml.example"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_config_loads_whole() -> None:
    config = load_config(EXAMPLE)

    assert config.database_url == "postgresql+psycopg://farm@db.studio.internal/farm"
    assert (config.server_url, config.listen) == ("http://farm-head.studio.internal:8765", "0.0.0.0:8765")
    assert [(show.name, show.share, show.gpu_quota, show.gpu_hour_budget) for show in config.shows] == [
        ("Night Shift", 2, 4, 200),
        ("Pilot", 1, None, None),
    ]
    assert [(person.name, person.role, person.notify) for person in config.people] == [
        ("alice", "editor", ("job.failed", "edit.failed_qc")),
        ("pat", "producer", ()),
    ]
    assert [(hook.format, hook.shows, hook.secret_env) for hook in config.webhooks] == [
        ("standard", (), "FARM_WEBHOOK_SECRET"),
        ("slack", ("Night Shift",), None),
    ]
    assert config.emails[0].to == ("producers@studio.example",)
    assert config.smtp is not None and (config.smtp.port, config.smtp.sender, config.smtp.starttls) == (
        587,
        "farm@studio.example",
        True,
    )


def test_every_mistake_is_found_at_once_at_its_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "farm.toml",
        """[farm]
max_shot_seconds = -3
colour = "blue"

[shows."Night Shift"]
share = "lots"

[people.alice]
role = "director"

[[notifications.webhook]]
events = ["job.done", "job.exploded"]

[gpu]
count = 4
""",
    )

    with pytest.raises(ConfigError) as raised:
        load_config(path)

    lines = str(raised.value).splitlines()
    assert lines == [
        f"{path}:14:1: gpu: unknown section [gpu]; allowed: farm, server, shows, people, notifications, "
        "editorial, path_map",
        f"{path}:2:1: farm.max_shot_seconds: max_shot_seconds must be more than 0, got -3",
        f"{path}:3:1: farm.colour: unknown key colour; allowed in [farm]: data_dir, database_url, models_dir, "
        "weights_dir, ray_address, max_shot_seconds, database_retry_seconds",
        f"{path}:6:1: shows.\"Night Shift\".share: share must be a number, got 'lots'",
        f"{path}:9:1: people.alice.role: role must be one of editor, producer, admin, got 'director'",
        f"{path}:12:1: notifications.webhook[0].events: events job.exploded unknown; allowed: job.done, job.failed, "
        "edit.failed_qc, shot.stuck, budget.spent, got ['job.done', 'job.exploded']",
        f"{path}:11:1: notifications.webhook[0]: [[notifications.webhook]] number 1 has no url; add url = ...",
    ]


def test_a_file_that_is_not_toml_says_where(tmp_path: Path) -> None:
    path = write(tmp_path / "farm.toml", '[farm]\ndata_dir = "/srv\n')

    with pytest.raises(ConfigError, match=rf"^{path}:2:\d+: not TOML"):
        load_config(path)


def test_flags_beat_the_environment_which_beats_the_file_which_beats_the_defaults(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    config = write(
        tmp_path / "etc" / "farm.toml",
        f'[farm]\ndata_dir = "{tmp_path / "from-file"}"\nmodels_dir = "{models}"\nray_address = "file-head:6379"\n'
        'max_shot_seconds = 90\ndatabase_url = "postgresql://farm@file-db/farm"\n',
    )
    env = {"FARM_CONFIG": str(config), "HOME": str(tmp_path)}

    from_file = resolve_settings(environ=env)
    from_env = resolve_settings(environ={**env, "FARM_RAY_ADDRESS": "env-head:6379", "FARM_DATA_DIR": str(tmp_path)})
    from_flag = resolve_settings(ray_address="flag-head:6379", environ={**env, "FARM_RAY_ADDRESS": "env-head:6379"})
    bare = resolve_settings(environ={"HOME": str(tmp_path)})

    assert (from_file.data_dir, from_file.models_dir, from_file.ray_address) == (
        tmp_path / "from-file",
        models,
        "file-head:6379",
    )
    assert (from_file.max_shot_seconds, from_file.database_url) == (90, "postgresql://farm@file-db/farm")
    assert (from_env.ray_address, from_env.data_dir) == ("env-head:6379", tmp_path)
    assert from_flag.ray_address == "flag-head:6379"
    assert bare.ray_address is None and bare.config.path is None
    assert from_file.config.path == config


def test_a_config_in_the_data_dir_is_found_there_but_cannot_move_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write(data / "farm.toml", '[server]\nurl = "http://farm-head:8765"\n')
    assert resolve_settings(data_dir=data, environ={}).config.server_url == "http://farm-head:8765"
    server = resolve_server(data_dir=data, environ={})
    assert server is not None and server.url == "http://farm-head:8765"

    write(data / "farm.toml", f'\n[farm]\ndata_dir = "{tmp_path / "elsewhere"}"\n')
    with pytest.raises(ConfigError, match=rf"{data / 'farm.toml'}:3:1: farm.data_dir: .* cannot move it"):
        resolve_settings(data_dir=data, environ={})


def test_a_password_in_the_file_is_refused_with_where_it_goes(tmp_path: Path) -> None:
    path = write(tmp_path / "farm.toml", '[farm]\ndatabase_url = "postgresql://farm:hunter2@db/farm"\n')

    with pytest.raises(ConfigError, match=r":2:1: farm.database_url: .* holds a password; put the password in"):
        resolve_settings(config=path, environ={})


def _farm(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FARM_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("FARM_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "farm", *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_command_reports_a_bad_config_located_and_takes_roles_from_a_good_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = write(tmp_path / "bad.toml", "[server]\nlisten = 8765\n")
    write(data / "farm.toml", '[people.alice]\nrole = "editor"\n')

    refused = _farm("status", "--config", str(bad), data_dir=data)
    missing = _farm("status", "--config", str(tmp_path / "nope.toml"), data_dir=data)
    created = _farm("token", "create", "alice", "--json", data_dir=data)
    unknown = _farm("token", "create", "zoe", data_dir=data)

    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"{bad}:2:1: server.listen: listen must be HOST:PORT" in refused.stderr
    assert missing.returncode == 2 and "no such config file" in missing.stderr
    assert created.returncode == 0 and '"role": "editor"' in created.stdout, created.stderr
    assert unknown.returncode == 2 and "give --role" in unknown.stderr and "people.zoe" in unknown.stderr


def test_the_manager_gives_the_files_shows_their_share_quota_and_budget(tmp_path: Path) -> None:
    path = write(
        tmp_path / "farm.toml",
        '[shows."Night Shift"]\nshare = 2\ngpu_quota = 4\n\n[shows.Pilot]\ngpu_hour_budget = 5\n',
    )
    farm = Farm(resolve_settings(config=path, data_dir=tmp_path / "data", environ={}))
    with farm:
        farm.set_show("Pilot", share=3)
        farm.apply_config_shows()
        shows = {show.name: (show.share, show.gpu_quota, show.gpu_hour_budget) for show in farm.shows()}

    assert shows == {"Night Shift": (2, 4, None), "Pilot": (3, None, 5)}  # what the file leaves out stays


def test_editorial_record_start_and_path_map_load_with_located_mistakes(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        '[editorial]\nrecord_start = "10:00:00;00"\n\n'
        '[[path_map]]\nlinux = "/mnt/farm"\nwindows = \'Z:\\farm\'\nmacos = "/Volumes/farm"\n'
    )
    config = load_config(good)
    assert config.record_start == "10:00:00;00"
    assert config.path_map[0].root("windows") == "Z:\\farm" and config.path_map[0].root("macos") == "/Volumes/farm"

    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[editorial]\nrecord_start = "1:00:00"\n\n'
        '[[path_map]]\nlinux = "mnt/farm"\nwindows = "Z:/farm"\n\n'
        '[[path_map]]\nmacos = "/Volumes/farm"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    found = {(finding.line, finding.field): finding.message for finding in caught.value.findings}
    assert "must be an SMPTE timecode" in found[(2, "editorial.record_start")]
    assert "must be an absolute path" in found[(5, "path_map[0].linux")]
    assert "drive or UNC path" in found[(6, "path_map[0].windows")]
    assert "on 1 platform(s)" in found[(8, "path_map[1]")]
