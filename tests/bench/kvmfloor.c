/*
 * The raw KVM floor for the port-I/O benchmark: the least a VMM can do per
 * exit. It loads a flat 16-bit guest at 0x8000 (CS=0x800), sets RCX, and
 * runs KVM_RUN in a loop, handling each port exit with nothing but a
 * check for the ACPI power-off port, until the guest writes 0x404.
 *
 *   kvmfloor IMAGE COUNT     -> "exits N" on stdout, exit 0
 */
#include <fcntl.h>
#include <stdint.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE (1 << 20)
#define LOAD 0x8000

static void
fail(const char *what)
{
	perror(what);
	exit(1);
}

int
main(int argc, char **argv)
{
	struct kvm_userspace_memory_region r = {0};
	struct kvm_sregs s;
	struct kvm_regs regs = {0};
	struct kvm_run *run;
	long exits = 0;
	int kvm, vm, vcpu, fd;
	uint8_t *mem;
	ssize_t n;

	if (argc != 3) {
		fprintf(stderr, "usage: kvmfloor IMAGE COUNT\n");
		return 2;
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		fail("/dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		fail("KVM_CREATE_VM");
	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		fail("mmap");
	fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		fail(argv[1]);
	n = read(fd, mem + LOAD, MEM_SIZE - LOAD);
	if (n <= 0)
		fail("read");
	close(fd);
	r.memory_size = MEM_SIZE;
	r.userspace_addr = (uintptr_t)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		fail("KVM_SET_USER_MEMORY_REGION");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		fail("KVM_CREATE_VCPU");
	run = mmap(NULL, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0),
		   PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		fail("mmap run");
	if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0)
		fail("KVM_GET_SREGS");
	s.cs.selector = LOAD >> 4;
	s.cs.base = LOAD;
	s.ds = s.es = s.ss = s.cs;
	s.ds.type = s.es.type = s.ss.type = 3;
	if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0)
		fail("KVM_SET_SREGS");
	regs.rflags = 2;
	regs.rip = 0;
	regs.rsp = 0x7000;
	regs.rcx = strtoul(argv[2], NULL, 0);
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		fail("KVM_SET_REGS");
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0)
			fail("KVM_RUN");
		if (run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "kvmfloor: unexpected exit %u\n",
				run->exit_reason);
			return 1;
		}
		exits++;
		if (run->io.port == 0x404 &&
		    run->io.direction == KVM_EXIT_IO_OUT)
			break;
	}
	printf("exits %ld\n", exits);
	return 0;
}
