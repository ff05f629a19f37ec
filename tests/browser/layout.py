"""Checks of a page's layout that several browser tests share."""

from __future__ import annotations

from typing import Any

PHONE = {"width": 390, "height": 844}


def assert_fits_a_phone(page: Any) -> None:
    """At phone width the page needs no sideways scrolling (wide tables scroll in their own
    box); the viewport is put back afterwards."""
    before = page.viewport_size
    page.set_viewport_size(PHONE)
    try:
        page.wait_for_function("() => document.documentElement.clientWidth <= 390")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > innerWidth + 1)
                .filter(e => !e.parentElement.closest('.table-wrap, pre'))
                .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"""
        )
        assert overflow <= 0, f"{page.url} is {overflow}px wider than a phone: {wide}"
    finally:
        page.set_viewport_size(before)
