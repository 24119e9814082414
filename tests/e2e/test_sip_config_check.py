"""Kamailio itself checks the configuration tawasol renders (`kamailio -c`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.stack import free_port
from tawasol.adapters.sip import check_config, write_config
from tawasol.config import Settings


@pytest.mark.sip
def test_rendered_config_passes_kamailio_check(tmp_path: Path) -> None:
    config = write_config(Settings(sip_port=free_port(), api_port=free_port()), tmp_path)
    assert "config file ok" in check_config(config)
