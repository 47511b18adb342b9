/*
 * debugexit (32-bit, for hvtest's examples): a guest that checks one thing
 * and reports pass or fail through the debug-exit device (-l debug-exit,
 * port 0xf4): it writes 0 for pass, 1 for fail, and bhyve exits with
 * (value << 1) | 1, i.e. 1 or 3 (kvm-unit-tests' convention).
 *
 * The check: the 16550's scratch register keeps the byte written to it.
 * rawload -r rcx=N adds N to the byte read back, so rcx=1 makes the check
 * fail on purpose (harness/examples/debugexit-fail.hvt).
 *
 * hvtest assembles it (guest-source debugexit.S) with fixtures/guests/lib.S.
 */
	.include "lib.S"
	.set COM1_SCR, COM1 + 7
	.set DEBUG_EXIT, 0xf4
	.globl _start
_start:
	PUTS checking
	mov $COM1_SCR, %dx
	mov $0x5a, %al
	out %al, %dx
	in %dx, %al
	add %cl, %al		/* rcx: the deliberate error */
	cmp $0x5a, %al
	jne fail
	PUTS passed
	xor %eax, %eax
	jmp report
fail:
	PUTS failed
	mov $1, %eax
report:
	mov $DEBUG_EXIT, %dx
	out %eax, %dx
	/* Without the device the write is dropped: halt (bhyve exits 2). */
	cli
1:	hlt
	jmp 1b

checking: .asciz "debugexit: checking the UART scratch register\r\n"
passed:	.asciz "debugexit: pass\r\n"
failed:	.asciz "debugexit: FAIL (scratch register read back wrong)\r\n"
