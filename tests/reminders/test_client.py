"""The async client the Rasa actions use, against the real app on loopback."""
import pytest

from reminders.client import RemindersClient, RemindersError

from .conftest import TOKEN

pytestmark = pytest.mark.asyncio


async def test_client_flow(make_client, rasa):
    c = await make_client()
    base = str(c.make_url(""))
    async with RemindersClient(base, TOKEN) as rc:
        child = await rc.create_child(consent_by="sender-1", consent_version="2026-01", nickname="小明",
                                      birth_date="2026-01-02", chat_sender_id="sender-1", output_channel="wechat",
                                      caregivers=[{"role": "grandma", "phone": "13900001111"}], community="幸福社区")
        assert child["caregivers"][0]["chat_sender_id"] == "sender-1" and child["community"] == "幸福社区"
        found = await rc.find_by_sender("sender-1")
        assert found["children"][0]["id"] == child["id"]
        assert await rc.find_by_sender("nobody") is None
        up = await rc.upcoming_for_sender("sender-1", limit=3)
        assert len(up) == 1 and len(up[0]["items"]) == 3
        res = await rc.record_dose(child["id"], vaccine="hepb", dose=2)
        assert res["item_id"] == "hepb-2"
        r = await rc.handle_reply("sender-1", "收到")
        assert r["action"] == "ack"
        with pytest.raises(RemindersError) as e:
            await rc.create_child(consent_by="x", consent_version="v", nickname="y", birth_date="2030-01-01",
                                  chat_sender_id="s2")
        assert e.value.status == 422 and e.value.code == "birth_date_in_future"
        out = await rc.opt_out(sender_id="sender-1")
        assert out["opted_out"] == [child["caregivers"][0]["id"]]
        exp = await rc.export_family(child["family_id"])
        assert exp["caregivers"][0]["opted_out"] is True
        assert (await rc.delete_family(child["family_id"]))["deleted"]["children"] == 1
    async with RemindersClient(base, "wrong") as rc:
        with pytest.raises(RemindersError) as e:
            await rc.upcoming(child["id"])
        assert e.value.status == 401
    async with RemindersClient("http://127.0.0.1:9", TOKEN, timeout=1) as rc:
        with pytest.raises(RemindersError) as e:
            await rc.upcoming("x")
        assert e.value.code == "unavailable"
