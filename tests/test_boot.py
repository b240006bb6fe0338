"""A factory-fresh phone of each model boots against the server, as its requests arrive."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from autoprov.provisioning import admin
from autoprov.provisioning.admin import ExtensionData
from tests.phones import MODELS, headers


@pytest.fixture
def phone_1001(site, db):
    admin.add_extension(ExtensionData("1001", "pw-1001", "Ada", "Lovelace", mailbox="1001"))
    return admin.add_phone(site, "00:04:F2:AA:BB:CC", "polycom_ip330", ["1001"])


@pytest.mark.parametrize("model", sorted(MODELS))
def test_initial_config_points_each_model_at_its_path(client, model):
    r = client.get("/000000000000.cfg", headers=headers(model))
    assert r.status_code == 200
    app = ET.fromstring(r.data)
    assert app.tag == "APPLICATION"
    assert app.get("CONFIG_FILES").split(", ")[0] == f"prov/{model}/device.cfg"
    device = ET.fromstring(client.get(f"/prov/{model}/device.cfg", headers=headers(model)).data)
    assert device.get("device.prov.serverName") == f"prov.example.test:8080/prov/{model}"
    assert device.get("device.prov.serverType") == "2"


def test_phone_config_from_database(client, phone_1001):
    r = client.get("/prov/polycom_ip330/0004f2aabbcc-phone.cfg", headers=headers("polycom_ip330"))
    assert r.status_code == 200, r.data
    reg = ET.fromstring(r.data).find("reg")
    assert reg.get("reg.1.auth.password") == "pw-1001"
    assert reg.get("reg.1.displayName") == "Ada Lovelace"
