/*
 * libFuzzer target: virtio-console (virtio 1.2 §5.3) with guest memory,
 * queue notifications and host input from the fuzzer.
 *
 * The device has a console port on stdio (fds 0 and 1 are pipes this
 * target holds the far ends of) and a socket port nobody connects to, so
 * both data paths, the control queues and the bounded output buffer run.
 *
 * Input:
 *   byte 0      flags: bit 0 MULTIPORT, bit 1 EVENT_IDX, bit 2 EMERG_WRITE
 *   byte 1      count of operations that follow, one byte each:
 *               0-5 notify that queue, 6 write the op count to emerg_wr,
 *               7 drain what the device wrote to stdout;
 *               bits 3-7 of an op: that many bytes of host input first
 *   the rest    guest memory from 0x10000 on: six rings (0x2000 apart:
 *               port 0 rx/tx, control rx/tx, port 1 rx/tx), then buffers
 *
 * Each run resets the device and sets the six rings up as a driver would.
 * No event loop runs: the device reads input when the guest notifies its
 * receive queue and writes output at once, buffering what the pipe will
 * not take (it is not drained every run, so the 64 KiB bound is reached).
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "inout.h"
#include "machine.h"
#include "pci_emul.h"
#include "virtio.h"

#define MEMSIZE (1 << 20)
#define RING_GPA 0x10000
#define NQ 6
#define SLOT 5

static struct vmctx *ctx;
static uint8_t *mem;
static int iobase, in_w, out_r;

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_virtio_console: %s\n", what);
	abort();
}

static uint32_t
io(int in, int off, int size, uint32_t v)
{
	inout_dispatch(ctx, in, iobase + off, size, &v);
	return v;
}

/* fds 0 and 1 become pipes; we keep the far ends, non-blocking. */
static void
stdio_pipes(void)
{
	int in[2], out[2];

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		die("no pipes");
	fflush(stdout);
	if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
		die("cannot redirect stdio");
	close(in[0]);
	close(out[1]);
	in_w = in[1];
	out_r = out[0];
	/* A small pipe: the device's 64 KiB bound is reached in a few runs. */
	fcntl(out[0], F_SETPIPE_SZ, 4096);
	fcntl(in_w, F_SETFL, O_NONBLOCK);
	fcntl(out_r, F_SETFL, O_NONBLOCK);
	fcntl(0, F_SETFL, O_NONBLOCK);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config *cfg = config_create();
	char err[256], opts[160];

	(void)argc;
	(void)argv;
	stdio_pipes();
	snprintf(opts, sizeof(opts),
		 "%d,virtio-console,console=stdio,agent=/tmp/"
		 "fuzz_virtio_console.%d.sock",
		 SLOT, (int)getpid());
	if (config_set(cfg, "pci.0.0.0.device", "hostbridge", err,
		       sizeof(err)) < 0 ||
	    pci_parse_slot(cfg, opts, err, sizeof(err)) < 0)
		die(err);
	ctx = vm_create_mock(MEMSIZE);
	if (!ctx || !machine_create(ctx, cfg) || init_pci(ctx) < 0)
		die("cannot make the VM");
	/* The listening socket works on without its name: leave none. */
	unlink(strchr(strchr(opts, '=') + 1, '=') + 1);
	mem = vm_map_gpa(ctx, 0, MEMSIZE);
	iobase = (int)(pci_cfg_read(ctx, 0, SLOT, 0, 0x10, 4) & ~3u);
	return 0;
}

static void
bringup(uint8_t flags)
{
	uint32_t features = 0;

	if (flags & 1)
		features |= 1u << 1; /* MULTIPORT */
	if (flags & 2)
		features |= VIRTIO_RING_F_EVENT_IDX;
	if (flags & 4)
		features |= 1u << 2; /* EMERG_WRITE */
	io(0, VIRTIO_PCI_STATUS, 1, 0);
	io(0, VIRTIO_PCI_STATUS, 1, 3);
	io(0, VIRTIO_PCI_GUEST_FEATURES, 4, features);
	memset(mem + RING_GPA, 0, NQ * 0x2000);
	for (int q = 0; q < NQ; q++) {
		io(0, VIRTIO_PCI_QUEUE_SEL, 2, (uint32_t)q);
		io(0, VIRTIO_PCI_QUEUE_PFN, 4, (RING_GPA + 0x2000 * q) >> 12);
	}
	io(0, VIRTIO_PCI_STATUS, 1, 7);
}

static void
drain(int fd)
{
	uint8_t buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t input[32] = "fuzzed host input\r\n0123456789ab";
	size_t room = MEMSIZE - RING_GPA;
	const uint8_t *ops;
	uint8_t flags, nops;

	if (size < 2)
		return 0;
	flags = data[0];
	nops = data[1];
	data += 2;
	size -= 2;
	if (nops > size)
		nops = (uint8_t)size;
	ops = data;
	data += nops;
	size -= nops;
	bringup(flags);
	memcpy(mem + RING_GPA, data, size < room ? size : room);
	for (int i = 0; i < nops; i++) {
		uint8_t op = ops[i] & 7, n = ops[i] >> 3;

		if (n && write(in_w, input, n) < 0)
			; /* a full pipe: the device is not reading */
		if (op < NQ)
			io(0, VIRTIO_PCI_QUEUE_NOTIFY, 2, op);
		else if (op == 6)
			io(0, 28, 4, nops);
		else
			drain(out_r);
	}
	(void)io(1, VIRTIO_PCI_ISR, 1, 0);
	drain(0); /* host input the guest did not take */
	return 0;
}
