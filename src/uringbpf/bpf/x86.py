"""A small x86-64 instruction encoder: the bottom of the direct JIT tier (:mod:`jit_x86`).

Only the instructions the BPF translation needs, written straight into a ``bytearray``
(no intermediate objects: the tier's budget is a few microseconds per BPF instruction).
Registers are the hardware numbers (``RAX`` = 0 ... ``R15`` = 15). ``w`` selects the 64-bit
operand size (REX.W); a 32-bit operation writes its register zero-extended, which is the
ALU32 semantics of BPF. Jumps to labels are emitted with 32-bit displacements and patched
by :meth:`Asm.resolve` (one pass and fix-ups); a jump back to a label already placed uses
8 bits when the distance fits.

Encodings follow the Intel SDM volume 2 (opcode tables, ModRM/SIB rules: a base of
RSP/R12 needs a SIB byte, a base of RBP/R13 needs a displacement).
"""

from __future__ import annotations

__all__ = ["Asm", "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10",
           "R11", "R12", "R13", "R14", "R15", "CC", "ALU_ADD", "ALU_OR", "ALU_AND", "ALU_SUB",
           "ALU_XOR", "ALU_CMP", "SHL", "SHR", "SAR", "ROL"]

RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI = range(8)
R8, R9, R10, R11, R12, R13, R14, R15 = range(8, 16)

#: condition codes (the low nibble of Jcc / SETcc)
CC = {"o": 0, "no": 1, "b": 2, "ae": 3, "e": 4, "ne": 5, "be": 6, "a": 7, "s": 8, "ns": 9,
      "l": 12, "ge": 13, "le": 14, "g": 15}

# Group-1 ALU operations: (the ``op r/m, reg`` opcode, the /digit of ``81``/``83``).
ALU_ADD, ALU_OR, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP = (0x01, 0), (0x09, 1), (0x21, 4), \
    (0x29, 5), (0x31, 6), (0x39, 7)
# Group-2 shifts: the /digit of C1/D3.
ROL, SHL, SHR, SAR = 0, 4, 5, 7


#: the recommended multi-byte NOP of each length 1-9 (Intel SDM vol. 2B, NOP)
_NOPS = (b"", b"\x90", b"\x66\x90", b"\x0f\x1f\x00", b"\x0f\x1f\x40\x00",
         b"\x0f\x1f\x44\x00\x00", b"\x66\x0f\x1f\x44\x00\x00",
         b"\x0f\x1f\x80\x00\x00\x00\x00", b"\x0f\x1f\x84\x00\x00\x00\x00\x00",
         b"\x66\x0f\x1f\x84\x00\x00\x00\x00\x00")


class Asm:
    """Machine code being written: ``code`` plus labels and the jumps still to patch."""

    __slots__ = ("code", "labels", "fixups", "short")

    def __init__(self) -> None:
        self.code = bytearray()
        self.labels: dict = {}
        self.fixups: list[tuple[int, object]] = []    # (offset of a rel32, label)
        self.short: list[tuple[int, object]] = []     # (offset of a rel8, label)

    # -- prefixes and operands --------------------------------------------------------------

    def _rr(self, opcode: bytes, reg: int, rm: int, w: bool, byte_regs: bool = False) -> None:
        """``opcode`` with a register-direct ModRM (reg field ``reg``, r/m field ``rm``)."""
        rex = (8 if w else 0) | (4 if reg & 8 else 0) | (1 if rm & 8 else 0)
        if rex or byte_regs:
            self.code.append(0x40 | rex)
        self.code += opcode
        self.code.append(0xC0 | (reg & 7) << 3 | (rm & 7))

    def _rm(self, opcode: bytes, reg: int, base: int, disp: int, w: bool,
            byte_regs: bool = False, prefix: int = 0, index: int | None = None,
            scale: int = 0) -> None:
        """``opcode`` with a memory operand ``[base + disp]`` (``[base + index << scale +
        disp]`` with an index register, never rsp; ``scale`` 0-3)."""
        c = self.code
        if prefix:
            c.append(prefix)
        rex = (8 if w else 0) | (4 if reg & 8 else 0) | (1 if base & 8 else 0)
        if index is not None:
            rex |= 2 if index & 8 else 0
        if rex or byte_regs:
            c.append(0x40 | rex)
        c += opcode
        if index is not None:
            # ModRM r/m = 100 (a SIB follows); base 101 needs a displacement
            sib = scale << 6 | (index & 7) << 3 | (base & 7)
            if disp == 0 and base & 7 != 5:
                c += bytes(((reg & 7) << 3 | 4, sib))
            elif -128 <= disp <= 127:
                c += bytes((0x40 | (reg & 7) << 3 | 4, sib, disp & 0xFF))
            else:
                c += bytes((0x80 | (reg & 7) << 3 | 4, sib))
                c += (disp & 0xFFFFFFFF).to_bytes(4, "little")
            return
        b = base & 7
        if disp == 0 and b != 5:
            c.append((reg & 7) << 3 | b)
            if b == 4:
                c.append(0x24)
        elif -128 <= disp <= 127:
            c.append(0x40 | (reg & 7) << 3 | b)
            if b == 4:
                c.append(0x24)
            c.append(disp & 0xFF)
        else:
            c.append(0x80 | (reg & 7) << 3 | b)
            if b == 4:
                c.append(0x24)
            c += (disp & 0xFFFFFFFF).to_bytes(4, "little")

    # -- moves ------------------------------------------------------------------------------

    def mov_rr(self, dst: int, src: int, w: bool = True) -> None:
        """``mov dst, src`` (32-bit: zero-extends)."""
        self._rr(b"\x89", src, dst, w)

    def mov_ri(self, dst: int, value: int) -> None:
        """Load a 64-bit constant (the shortest form that gives exactly ``value``)."""
        value &= 0xFFFFFFFFFFFFFFFF
        if value < 1 << 32:
            if dst & 8:
                self.code.append(0x41)
            self.code.append(0xB8 | (dst & 7))
            self.code += value.to_bytes(4, "little")
        elif value >= 0xFFFFFFFF80000000:               # sign-extended imm32
            self._rr(b"\xc7", 0, dst, True)
            self.code += (value & 0xFFFFFFFF).to_bytes(4, "little")
        else:
            self.code.append(0x49 if dst & 8 else 0x48)
            self.code.append(0xB8 | (dst & 7))
            self.code += value.to_bytes(8, "little")

    def movabs(self, dst: int) -> int:
        """``movabs dst, imm64`` with a zero placeholder; returns the placeholder's offset."""
        self.code += bytes((0x49 if dst & 8 else 0x48, 0xB8 | (dst & 7)))
        self.code += bytes(8)
        return len(self.code) - 8

    def mov_ri32(self, dst: int, value: int) -> None:
        """``mov r32, imm32`` (the register is zero-extended)."""
        self.mov_ri(dst, value & 0xFFFFFFFF)

    def load(self, dst: int, base: int, disp: int, size: int, signed: bool = False,
             index: int | None = None, scale: int = 0) -> None:
        """``dst = *(size *)(base + disp)`` (``+ index << scale`` when given) zero- or
        sign-extended to 64 bits."""
        if size == 8:
            self._rm(b"\x8b", dst, base, disp, True, index=index, scale=scale)
        elif size == 4:
            if signed:
                self._rm(b"\x63", dst, base, disp, True, index=index, scale=scale)  # movsxd
            else:
                self._rm(b"\x8b", dst, base, disp, False, index=index, scale=scale)
        elif signed:
            self._rm(b"\x0f\xbe" if size == 1 else b"\x0f\xbf", dst, base, disp, True,
                     index=index, scale=scale)
        else:
            self._rm(b"\x0f\xb6" if size == 1 else b"\x0f\xb7", dst, base, disp, False,
                     index=index, scale=scale)

    def store(self, base: int, disp: int, src: int, size: int) -> None:
        """``*(size *)(base + disp) = src``."""
        if size == 8:
            self._rm(b"\x89", src, base, disp, True)
        elif size == 4:
            self._rm(b"\x89", src, base, disp, False)
        elif size == 2:
            self._rm(b"\x89", src, base, disp, False, prefix=0x66)
        else:
            self._rm(b"\x88", src, base, disp, False, byte_regs=src >= 4)

    def store_imm(self, base: int, disp: int, value: int, size: int) -> None:
        """``*(size *)(base + disp) = value`` (8 bytes: the sign-extended imm32)."""
        if size == 1:
            self._rm(b"\xc6", 0, base, disp, False)
            self.code.append(value & 0xFF)
        elif size == 2:
            self._rm(b"\xc7", 0, base, disp, False, prefix=0x66)
            self.code += (value & 0xFFFF).to_bytes(2, "little")
        else:
            self._rm(b"\xc7", 0, base, disp, size == 8)
            self.code += (value & 0xFFFFFFFF).to_bytes(4, "little")

    def lea(self, dst: int, base: int, disp: int) -> None:
        """``dst = base + disp``."""
        self._rm(b"\x8d", dst, base, disp, True)

    def movsx_rr(self, dst: int, src: int, bits: int, w: bool) -> None:
        """Sign-extend the low ``bits`` (8, 16, 32) of ``src`` into ``dst`` (32-bit:
        zero-extended above)."""
        if bits == 32:
            self._rr(b"\x63", dst, src, True)
        else:
            self._rr(b"\x0f\xbe" if bits == 8 else b"\x0f\xbf", dst, src, w, byte_regs=bits == 8)

    def movzx16(self, dst: int, src: int) -> None:
        """``movzx dst32, src16``."""
        self._rr(b"\x0f\xb7", dst, src, False)

    # -- arithmetic ---------------------------------------------------------------------------

    def alu_rr(self, op: tuple[int, int], dst: int, src: int, w: bool) -> None:
        """``op dst, src`` for a group-1 operation (ADD, OR, AND, SUB, XOR, CMP)."""
        self._rr(bytes((op[0],)), src, dst, w)

    def alu_ri(self, op: tuple[int, int], dst: int, imm: int, w: bool) -> None:
        """``op dst, imm32`` (sign-extended to 64 bits when ``w``)."""
        if -128 <= imm <= 127:
            self._rr(b"\x83", op[1], dst, w)
            self.code.append(imm & 0xFF)
        else:
            self._rr(b"\x81", op[1], dst, w)
            self.code += (imm & 0xFFFFFFFF).to_bytes(4, "little")

    def alu_mi(self, op: tuple[int, int], base: int, disp: int, imm: int) -> None:
        """``op qword [base + disp], imm32``."""
        if -128 <= imm <= 127:
            self._rm(b"\x83", op[1], base, disp, True)
            self.code.append(imm & 0xFF)
        else:
            self._rm(b"\x81", op[1], base, disp, True)
            self.code += (imm & 0xFFFFFFFF).to_bytes(4, "little")

    def alu_mem_imm(self, op: tuple[int, int], base: int, disp: int, imm: int,
                    size: int, index: int | None = None, scale: int = 0) -> None:
        """``op size [base + disp], imm`` (``+ index << scale`` when given) for a 1, 2, 4
        or 8-byte operand (8: the sign-extended imm32); one read and one write of the
        operand."""
        if size == 8:
            value = imm & 0xFFFFFFFF
            signed = value - (1 << 32) if value >> 31 else value
        else:
            bits = 8 * size
            value = imm & ((1 << bits) - 1)
            signed = value - (1 << bits) if value >> (bits - 1) else value
        prefix = 0x66 if size == 2 else 0
        w = size == 8
        if size == 1:
            self._rm(b"\x80", op[1], base, disp, False, index=index, scale=scale)
            self.code.append(value)
        elif -128 <= signed <= 127:
            self._rm(b"\x83", op[1], base, disp, w, prefix=prefix, index=index, scale=scale)
            self.code.append(signed & 0xFF)
        else:
            self._rm(b"\x81", op[1], base, disp, w, prefix=prefix, index=index, scale=scale)
            self.code += value.to_bytes(min(size, 4), "little")

    def alu_mem_reg(self, op: tuple[int, int], base: int, disp: int, src: int,
                    w: bool, index: int | None = None, scale: int = 0) -> None:
        """``op dword/qword [base + disp], src`` (``+ index << scale`` when given)."""
        self._rm(bytes((op[0],)), src, base, disp, w, index=index, scale=scale)

    def alu_rm(self, op: tuple[int, int], reg: int, base: int, disp: int) -> None:
        """``op reg, qword [base + disp]`` (the ``r, r/m`` form: opcode + 2)."""
        self._rm(bytes((op[0] + 2,)), reg, base, disp, True)

    def test_rr(self, a: int, b: int, w: bool) -> None:
        """``test a, b``."""
        self._rr(b"\x85", b, a, w)

    def test_ri(self, a: int, imm: int, w: bool) -> None:
        """``test a, imm32``."""
        self._rr(b"\xf7", 0, a, w)
        self.code += (imm & 0xFFFFFFFF).to_bytes(4, "little")

    def cmp8_ri(self, reg: int, imm: int) -> None:
        """``cmp reg8, imm8`` (the low byte; 0-255 unsigned), or ``test reg8, reg8`` for 0."""
        # spl/bpl/sil/dil need a REX prefix (without one, 4-7 name ah/ch/dh/bh)
        if imm == 0:
            self._rr(b"\x84", reg, reg, False, byte_regs=4 <= reg < 8)
        else:
            self._rr(b"\x80", 7, reg, False, byte_regs=4 <= reg < 8)
            self.code.append(imm & 0xFF)

    def imul_rr(self, dst: int, src: int, w: bool) -> None:
        """``dst *= src`` (low bits: the same for signed and unsigned)."""
        self._rr(b"\x0f\xaf", dst, src, w)

    def imul_ri(self, dst: int, imm: int, w: bool) -> None:
        """``dst *= imm32``."""
        if -128 <= imm <= 127:
            self._rr(b"\x6b", dst, dst, w)
            self.code.append(imm & 0xFF)
        else:
            self._rr(b"\x69", dst, dst, w)
            self.code += (imm & 0xFFFFFFFF).to_bytes(4, "little")

    def neg(self, dst: int, w: bool) -> None:
        """``neg dst``."""
        self._rr(b"\xf7", 3, dst, w)

    def div(self, src: int, w: bool, signed: bool) -> None:
        """``div``/``idiv src``: rdx:rax / src -> rax, remainder rdx."""
        self._rr(b"\xf7", 7 if signed else 6, src, w)

    def sign_extend_rax(self, w: bool) -> None:
        """``cqo`` (64) / ``cdq`` (32): rdx = the sign of rax."""
        if w:
            self.code.append(0x48)
        self.code.append(0x99)

    def shift_ri(self, op: int, dst: int, count: int, w: bool) -> None:
        """``shl``/``shr``/``sar`` by a constant."""
        self._rr(b"\xc1", op, dst, w)
        self.code.append(count & 0xFF)

    def shift_cl(self, op: int, dst: int, w: bool) -> None:
        """Shift by ``cl`` (the hardware masks it to 5 or 6 bits, as BPF does)."""
        self._rr(b"\xd3", op, dst, w)

    def rol16_8(self, dst: int) -> None:
        """``rol dst16, 8``: swap the two low bytes."""
        self.code.append(0x66)
        self._rr(b"\xc1", ROL, dst, False)
        self.code.append(8)

    def bswap(self, dst: int, w: bool) -> None:
        """``bswap dst`` (32 or 64 bits)."""
        rex = (8 if w else 0) | (1 if dst & 8 else 0)
        if rex:
            self.code.append(0x40 | rex)
        self.code += bytes((0x0F, 0xC8 | (dst & 7)))

    # -- atomics ------------------------------------------------------------------------------

    def lock_alu(self, op: tuple[int, int], base: int, disp: int, src: int, w: bool) -> None:
        """``lock op [base + disp], src`` (ADD, OR, AND, XOR)."""
        self.code.append(0xF0)
        self._rm(bytes((op[0],)), src, base, disp, w)

    def lock_xadd(self, base: int, disp: int, src: int, w: bool) -> None:
        """``lock xadd [base + disp], src``: src = the old value."""
        self.code.append(0xF0)
        self._rm(b"\x0f\xc1", src, base, disp, w)

    def xchg(self, base: int, disp: int, src: int, w: bool) -> None:
        """``xchg [base + disp], src`` (locked by the hardware)."""
        self._rm(b"\x87", src, base, disp, w)

    def lock_cmpxchg(self, base: int, disp: int, src: int, w: bool) -> None:
        """``lock cmpxchg [base + disp], src``: compares with rax; rax = old on failure."""
        self.code.append(0xF0)
        self._rm(b"\x0f\xb1", src, base, disp, w)

    # -- stack and calls ----------------------------------------------------------------------

    def push(self, reg: int) -> None:
        """``push reg``."""
        if reg & 8:
            self.code.append(0x41)
        self.code.append(0x50 | (reg & 7))

    def pop(self, reg: int) -> None:
        """``pop reg``."""
        if reg & 8:
            self.code.append(0x41)
        self.code.append(0x58 | (reg & 7))

    def call_r(self, reg: int) -> None:
        """``call reg``."""
        self._rr(b"\xff", 2, reg, False)

    def ret(self) -> None:
        """``ret``."""
        self.code.append(0xC3)

    # -- control flow -------------------------------------------------------------------------

    def label(self, name: object) -> None:
        """Place ``name`` here."""
        self.labels[name] = len(self.code)

    def jmp(self, target: object) -> None:
        """``jmp target``."""
        where = self.labels.get(target)
        if where is not None:
            rel = where - (len(self.code) + 2)
            if rel >= -128:
                self.code += bytes((0xEB, rel & 0xFF))
                return
            self.code.append(0xE9)
            self.code += (where - (len(self.code) + 4) & 0xFFFFFFFF).to_bytes(4, "little")
            return
        self.code += b"\xe9\0\0\0\0"
        self.fixups.append((len(self.code) - 4, target))

    def jcc(self, cc: int, target: object) -> None:
        """``j<cc> target``."""
        where = self.labels.get(target)
        if where is not None:
            rel = where - (len(self.code) + 2)
            if rel >= -128:
                self.code += bytes((0x70 | cc, rel & 0xFF))
                return
            self.code += bytes((0x0F, 0x80 | cc))
            self.code += (where - (len(self.code) + 4) & 0xFFFFFFFF).to_bytes(4, "little")
            return
        self.code += bytes((0x0F, 0x80 | cc, 0, 0, 0, 0))
        self.fixups.append((len(self.code) - 4, target))

    def jcc_short(self, cc: int, target: object) -> None:
        """``j<cc> target`` with an 8-bit displacement: the caller knows that the label
        will be placed within 127 bytes after this instruction."""
        self.code += bytes((0x70 | cc, 0))
        self.short.append((len(self.code) - 1, target))

    def jmp_short(self, target: object) -> None:
        """``jmp target`` with an 8-bit displacement (the label will be within 127 bytes)."""
        self.code += b"\xeb\0"
        self.short.append((len(self.code) - 1, target))

    def movzx8(self, dst: int, src: int) -> None:
        """``movzx dst32, src8`` (zero-extended to 64 bits)."""
        # spl/bpl/sil/dil need a REX prefix (without one, 4-7 name ah/ch/dh/bh)
        self._rr(b"\x0f\xb6", dst, src, False, byte_regs=4 <= src < 8)

    def align(self, boundary: int = 16) -> None:
        """Pad with the fewest multi-byte NOPs (the SDM's recommended forms) to a multiple
        of ``boundary``: a loop head on a 16-byte boundary is fetched and decoded in fewer
        blocks per iteration, as LLVM's ``.p2align 4`` does for its loops."""
        gap = -len(self.code) % boundary
        while gap:
            n = min(gap, len(_NOPS) - 1)
            self.code += _NOPS[n]
            gap -= n

    def call_label(self, target: object) -> None:
        """``call target`` (a label of this code)."""
        self.code += b"\xe8\0\0\0\0"
        self.fixups.append((len(self.code) - 4, target))

    def resolve(self) -> bytes:
        """Patch every forward jump and call; the finished code. A label never placed is
        a bug of the translator (KeyError)."""
        code, labels = self.code, self.labels
        for at, target in self.fixups:
            code[at:at + 4] = ((labels[target] - (at + 4)) & 0xFFFFFFFF).to_bytes(4, "little")
        self.fixups.clear()
        for at, target in self.short:
            rel = labels[target] - (at + 1)
            if not 0 <= rel <= 127:
                raise RuntimeError(f"short jump of {rel} bytes: a translator bug")
            code[at] = rel
        self.short.clear()
        return bytes(code)
