"""The processor as the libraries see it: the CPUID instruction, run from Python.

/proc/cpuinfo describes the host even under user-mode QEMU, and NumPy's feature list cannot tell
two AVX2 processors apart; CPUID is what OpenBLAS, oneDNN and TensorFlow ask, and what an emulator
answers for the processor it poses as. Run as a script, it prints the brand string and whether
AVX2 and AVX-512 are present, one per line.
"""

from __future__ import annotations

import ctypes
import mmap
import struct

# x86-64 System V: cpuid(leaf=edi, subleaf=esi, registers=rdx) stores eax, ebx, ecx, edx.
_CPUID_CODE = bytes.fromhex(
    "53"  # push rbx (callee-saved, and cpuid overwrites it)
    "89f8"  # mov eax, edi
    "89f1"  # mov ecx, esi
    "4989d0"  # mov r8, rdx
    "0fa2"  # cpuid
    "418900"  # mov [r8], eax
    "41895804"  # mov [r8+4], ebx
    "41894808"  # mov [r8+8], ecx
    "4189500c"  # mov [r8+12], edx
    "5b"  # pop rbx
    "c3"  # ret
)


def cpuid(leaf: int, subleaf: int = 0) -> tuple[int, int, int, int]:
    """eax, ebx, ecx, edx for one CPUID leaf."""
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_CPUID_CODE)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    function = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p)(address)
    registers = (ctypes.c_uint32 * 4)()
    function(leaf, subleaf, ctypes.addressof(registers))
    result = tuple(registers)
    del function
    return result


def brand() -> str:
    words = b"".join(struct.pack("<4I", *cpuid(leaf)) for leaf in range(0x80000002, 0x80000005))
    return words.split(b"\0")[0].decode("ascii", "replace").strip()


def features() -> dict[str, bool]:
    _, ebx, _, _ = cpuid(7)
    return {"avx2": bool(ebx >> 5 & 1), "avx512f": bool(ebx >> 16 & 1)}


if __name__ == "__main__":
    print(brand())
    for name, present in features().items():
        print(name, present)
