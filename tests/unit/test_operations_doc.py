"""docs/operations.md cannot drift from the code: its settings table is what the settings say,
and every metric this service exports is documented there."""

from __future__ import annotations

from pathlib import Path

from mediatasks import settings, settingsdoc, telemetry

PAGE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_the_settings_table_is_generated_from_the_settings() -> None:
    page = PAGE.read_text()
    assert settingsdoc.rewrite(page) == page, (
        "docs/operations.md is out of date: run python -m mediatasks.settingsdoc docs/operations.md"
    )


def test_every_setting_says_what_it_means() -> None:
    described = {doc.name: doc for doc in settingsdoc.describe()}
    assert set(described) == set(settings.Settings.model_fields)
    assert [name for name, doc in described.items() if not doc.meaning] == []
    assert described["database_url"].variables == ("MEDIATASKS_DATABASE_URL", "DATABASE_URL")
    assert described["retry_backoff_s"].default == "`[30.0, 180.0]`"
    assert described["secret_key"].default == "(empty)"


def test_every_metric_is_documented() -> None:
    page = PAGE.read_text()
    names = {family.name for family in telemetry.REGISTRY.collect()}
    names.add("mediatasks_queue_depth")
    ours = {name for name in names if name.startswith("mediatasks_")}
    counters = {
        f"{family.name}_total"
        for family in telemetry.REGISTRY.collect()
        if family.type == "counter"
    }
    missing = [
        name
        for name in sorted(ours)
        if f"`{name}`" not in page
        and f"`{name}_total`" not in page
        and f"`{name}_info`" not in page
    ]
    assert missing == [], missing
    assert counters and all(
        f"`{name}`" in page for name in counters if name.startswith("mediatasks_")
    )
