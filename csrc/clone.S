/*
 * The clone trampolines of csrc/clone.h, in assembly: a raw clone with a new
 * stack returns in the child with nothing on that stack to return to, so each
 * makes the system call and, in the child, calls fn(arg) and exits with its
 * result. fn and arg ride in registers the system call preserves (the child
 * gets a copy of the caller's), or on the child's new stack. Linked with the
 * child-side units (raw system calls only: scripts/check-child.ts).
 *
 *   long bb_clone3_raw(struct clone_args *args, size_t size, fn, arg)
 *     clone3 (Linux 5.3): the kernel sets the child's stack pointer to
 *     args->stack + args->stack_size (the caller passes a 16-byte aligned top).
 *   long bb_clone_raw(unsigned long flags, void *stack_top, int *pidfd, fn, arg)
 *     clone: (flags, newsp, parent_tid, then child_tid and tls on x86_64 but
 *     tls and child_tid on aarch64); both of those are zeroed, as neither
 *     CLONE_SETTLS nor CLONE_CHILD_* is ever passed. With CLONE_PIDFD the
 *     kernel stores the pidfd at parent_tid.
 */
	.text

#if defined(__x86_64__)

	.globl bb_clone3_raw
	.hidden bb_clone3_raw
	.type bb_clone3_raw, @function
	.p2align 4
bb_clone3_raw:
	mov %rdx, %r9		/* fn: r9 survives the syscall */
	mov %rcx, %r8		/* arg: rcx does not */
	mov $435, %eax		/* clone3 */
	syscall
	test %rax, %rax
	jz 1f
	ret
1:	xor %ebp, %ebp
	mov %r8, %rdi
	call *%r9
	mov %eax, %edi
	mov $231, %eax		/* exit_group */
	syscall
	hlt
	.size bb_clone3_raw, .-bb_clone3_raw

	.globl bb_clone_raw
	.hidden bb_clone_raw
	.type bb_clone_raw, @function
	.p2align 4
bb_clone_raw:
	mov %rcx, %r9		/* fn */
	sub $16, %rsi		/* arg goes on the child's stack (r8 is tls) */
	mov %r8, (%rsi)
	xor %r10d, %r10d	/* child_tid */
	xor %r8d, %r8d		/* tls */
	mov $56, %eax		/* clone */
	syscall
	test %rax, %rax
	jz 1f
	ret
1:	xor %ebp, %ebp
	pop %rdi		/* arg */
	add $8, %rsp		/* back to the 16-byte aligned top */
	call *%r9
	mov %eax, %edi
	mov $231, %eax		/* exit_group */
	syscall
	hlt
	.size bb_clone_raw, .-bb_clone_raw

#elif defined(__aarch64__)

	.globl bb_clone3_raw
	.hidden bb_clone3_raw
	.type bb_clone3_raw, %function
	.p2align 2
bb_clone3_raw:
	mov x9, x2		/* fn */
	mov x10, x3		/* arg */
	mov x8, #435		/* clone3 */
	svc #0
	cbz x0, 1f
	ret
1:	mov x29, xzr
	mov x30, xzr
	mov x0, x10
	blr x9
	mov x8, #94		/* exit_group */
	svc #0
	brk #0
	.size bb_clone3_raw, .-bb_clone3_raw

	.globl bb_clone_raw
	.hidden bb_clone_raw
	.type bb_clone_raw, %function
	.p2align 2
bb_clone_raw:
	mov x9, x3		/* fn */
	mov x10, x4		/* arg */
	mov x3, xzr		/* tls */
	mov x4, xzr		/* child_tid */
	mov x8, #220		/* clone */
	svc #0
	cbz x0, 1f
	ret
1:	mov x29, xzr
	mov x30, xzr
	mov x0, x10
	blr x9
	mov x8, #94		/* exit_group */
	svc #0
	brk #0
	.size bb_clone_raw, .-bb_clone_raw

#else
#error "bunbox supports x86_64 and aarch64"
#endif

	.section .note.GNU-stack, "", %progbits
