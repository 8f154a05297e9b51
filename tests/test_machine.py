"""scripts/machine.py: the CPU line every benchmark file carries, read from a cpuinfo file."""

import pytest
from conftest import load_script


@pytest.fixture(scope="module")
def machine():
    return load_script("machine")


def test_names_the_model_and_the_int8_and_bf16_features(machine, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    processor = "model name\t: AMD EPYC 9R14\nflags\t\t: fpu sse avx2 avx512f avx512_vnni avx512_bf16\n\n"
    cpuinfo.write_text("processor\t: 0\n" + processor + "processor\t: 1\n" + processor)
    text = machine.cpu_description(cpuinfo)
    assert text.startswith("AMD EPYC 9R14, ")
    assert text.endswith("(AVX2, AVX-512, AVX-512 VNNI, AVX-512 BF16)")


def test_an_avx2_only_cpu_lists_no_vnni(machine, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("model name : Old CPU\nflags : fpu avx avx2 fma\n")
    assert machine.cpu_description(cpuinfo).endswith("(AVX2)")


def test_an_unreadable_cpuinfo_still_gives_a_line(machine, tmp_path):
    assert machine.cpu_description(tmp_path / "missing").startswith("unknown CPU, ")
