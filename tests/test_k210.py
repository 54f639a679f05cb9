"""The k210 package's facts: which firmware build and load mode a model needs, the flash placement rule."""
import pytest

from host_tools.k210 import firmware, flash
from host_tools.k210.firmware import MIB, ModelMemory, verdict


def test_budgets_are_what_the_firmware_facts_say_is_left_for_models():
    assert firmware.model_budget("full") == 2 * MIB and firmware.model_budget("minimum") == 4 * MIB
    with pytest.raises(ValueError, match="unknown firmware build 'tiny'"):
        firmware.model_budget("tiny")


@pytest.mark.parametrize("heap, heap_flash, largest, build, load, fits", [
    (1 * MIB, 1 * MIB, 100_000, "full", "ram", {"full": True, "minimum": True}),
    (3 * MIB, 1 * MIB, 400_000, "full", "flash", {"full": True, "minimum": True}),
    # load_flash would need more heap than the full build has: the minimum build, from RAM
    (3 * MIB, 2.5 * MIB, 1 * MIB, "minimum", "ram", {"full": False, "minimum": True}),
    # an alpha 1.0 MobileNet's shape: 4.2 MB file, two 1 MiB layers streamed
    (4.3 * MIB, 2.2 * MIB, 1 * MIB, "minimum", "flash", {"full": False, "minimum": True}),
])
def test_verdict_names_the_build_and_load_mode_that_fit(heap, heap_flash, largest, build, load, fits):
    v = verdict(ModelMemory(int(heap), int(heap_flash), largest))
    assert (v.build, v.load, v.fits) == (build, load, fits)
    assert v.text().startswith("the %s firmware build with kpu.load%s" % (build, "_flash" if load == "flash" else ""))


def test_no_build_when_a_layer_is_too_big_to_stream():
    mem = ModelMemory(5 * MIB, 3 * MIB, 2 * MIB)
    assert verdict(mem) is None
    assert "too big for kpu.load_flash" in firmware.no_fit_reason(mem)


def test_place_fills_gaps_around_pins_and_names_the_model_that_does_not_fit():
    offs = flash.place([("a", 5000), ("b", 100), ("c", 70000)], pins={"b": 0x302000})
    assert offs == {"a": 0x300000, "b": 0x302000, "c": 0x303000}
    with pytest.raises(flash.PlanError, match="a: two models have this name"):
        flash.place([("a", 1), ("a", 2)])
    with pytest.raises(flash.PlanError, match=r"big: \d+ bytes do not fit"):
        flash.place([("big", flash.SPIFFS_OFFSET)])
