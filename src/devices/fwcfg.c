/*
 * QEMU's firmware configuration device (QEMU docs/specs/fw_cfg.rst) on the
 * x86 ports: the selector at 0x510, the data byte at 0x511 and the DMA
 * address register at 0x514-0x51b.
 *
 *   -l fwcfg,qemu                   lpc.fwcfg=qemu
 *   -f [name=]NAME,string=VALUE     fwcfg.files.N.name, fwcfg.files.N.string
 *   -f [name=]NAME,file=PATH        fwcfg.files.N.name, fwcfg.files.N.file
 *   -o fwcfg.kernel=PATH            KERNEL/SETUP items (a bzImage is split
 *   -o fwcfg.initrd=PATH            at its setup code, as QEMU does), the
 *   -o fwcfg.cmdline=STRING         INITRD and CMDLINE items
 *
 * bhyve 14's other interface, -l fwcfg,bhyve (its own fwctl protocol on the
 * same ports), is refused with a message.
 *
 * Items: the signature, ID (traditional + DMA), NB_CPUS, MAX_CPUS,
 * RAM_SIZE, the file directory and the files "bootorder" (empty),
 * "etc/e820" and the user's, sorted by name with selectors from 0x20 in
 * that order. Every item is read-only: DMA writes set the error bit.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e820.h"
#include "fwcfg.h"
#include "inout.h"
#include "machine.h"

#define FILE_MAX_SIZE (1u << 30) /* -f file= and kernel images */
#define E820_SLOTS 64
#define E820_ENTRY 20	 /* u64 address, u64 length, u32 type, packed */
#define SEL_WRITE 0x4000 /* the selector's write bit, ignored */

struct item {
	uint16_t key;
	uint32_t size;
	uint8_t *data;
	char name[FWCFG_NAME_MAX]; /* files only */
};

struct items {
	struct item *v;
	int n, cap;
};

struct fwcfg {
	pthread_mutex_t lock;
	struct vmctx *ctx;
	struct items items;
	const struct item *cur; /* the selected item, or NULL */
	uint32_t off;		/* the data offset inside it */
	uint32_t dma_hi;	/* the DMA address's high half, big-endian */
	bool ports;
};

static const char dma_signature[8] = "QEMU CFG";

static int
items_add(struct items *it, uint16_t key, const char *name, void *data,
	  uint32_t size)
{
	struct item *e;

	if (it->n == it->cap) {
		int cap = it->cap ? it->cap * 2 : 16;
		struct item *v = realloc(it->v, (size_t)cap * sizeof(*v));

		if (!v) {
			free(data);
			return -1;
		}
		it->v = v;
		it->cap = cap;
	}
	e = &it->v[it->n++];
	memset(e, 0, sizeof(*e));
	e->key = key;
	e->size = size;
	e->data = data;
	if (name)
		snprintf(e->name, sizeof(e->name), "%s", name);
	return 0;
}

static void
items_free(struct items *it)
{
	for (int i = 0; i < it->n; i++)
		free(it->v[i].data);
	free(it->v);
	memset(it, 0, sizeof(*it));
}

/* An item holding a copy of len bytes. */
static int
add_bytes(struct items *it, uint16_t key, const char *name, const void *src,
	  uint32_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p)
		return -1;
	memcpy(p, src, len);
	return items_add(it, key, name, p, len);
}

static int
add_le(struct items *it, uint16_t key, uint64_t val, uint32_t len)
{
	uint64_t le = htole64(val);

	return add_bytes(it, key, NULL, &le, len);
}

static const struct item *
item_find(const struct fwcfg *fc, uint16_t key)
{
	for (int i = 0; i < fc->items.n; i++)
		if (fc->items.v[i].key == key)
			return &fc->items.v[i];
	return NULL;
}

static void
select_item(struct fwcfg *fc, uint16_t sel)
{
	fc->cur = item_find(fc, sel & ~SEL_WRITE);
	fc->off = 0;
}

/* Past the end, or with nothing selected, the data register reads 0. */
static uint8_t
data_byte(struct fwcfg *fc)
{
	if (!fc->cur || fc->off >= fc->cur->size)
		return 0;
	return fc->cur->data[fc->off++];
}

/*
 * 0x510: a 16-bit write selects an item. 0x511: byte reads walk it;
 * writes are ignored, as in QEMU since v2.4.
 */
static int
port_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax,
	void *arg)
{
	struct fwcfg *fc = arg;
	bool sel = port == FWCFG_PORT_SEL;

	(void)ctx;
	if ((sel && bytes != 2) || (!sel && bytes != 1)) {
		if (in)
			*eax = 0xffffffff;
		return -1;
	}
	if (sel && in) {
		*eax = 0xffff; /* the selector is write-only */
		return 0;
	}
	pthread_mutex_lock(&fc->lock);
	if (sel)
		select_item(fc, (uint16_t)*eax);
	else if (in)
		*eax = data_byte(fc);
	pthread_mutex_unlock(&fc->lock);
	return 0;
}

/* DMA read: copy what the item has left, zeros after its end. */
static bool
dma_read(struct fwcfg *fc, uint64_t gpa, uint32_t len)
{
	uint32_t avail = 0, n;
	uint8_t *dst;

	if (len == 0)
		return true;
	dst = vm_map_gpa(fc->ctx, gpa, len);
	if (!dst)
		return false;
	if (fc->cur && fc->off < fc->cur->size)
		avail = fc->cur->size - fc->off;
	n = len < avail ? len : avail;
	if (n)
		memcpy(dst, fc->cur->data + fc->off, n);
	memset(dst + n, 0, len - n);
	fc->off += n;
	return true;
}

static void
dma_skip(struct fwcfg *fc, uint32_t len)
{
	uint32_t avail = 0;

	if (fc->cur && fc->off < fc->cur->size)
		avail = fc->cur->size - fc->off;
	fc->off += len < avail ? len : avail;
}

/*
 * One FWCfgDmaAccess at gpa, read once: select, then read, write or skip;
 * the result (0, or the error bit) goes back into its control field.
 */
static void
dma_run(struct fwcfg *fc, uint64_t gpa)
{
	uint8_t *p = vm_map_gpa(fc->ctx, gpa, 16);
	uint32_t control, len, result;
	uint64_t addr;
	bool ok = true;

	if (!p)
		return; /* nowhere to report to */
	memcpy(&control, p, 4);
	memcpy(&len, p + 4, 4);
	memcpy(&addr, p + 8, 8);
	control = be32toh(control);
	len = be32toh(len);
	addr = be64toh(addr);
	if (control & FWCFG_DMA_SELECT)
		select_item(fc, (uint16_t)(control >> 16));
	if (control & FWCFG_DMA_READ)
		ok = dma_read(fc, addr, len);
	else if (control & FWCFG_DMA_WRITE)
		ok = false; /* every item is read-only */
	else if (control & FWCFG_DMA_SKIP)
		dma_skip(fc, len);
	result = htobe32(ok ? 0 : FWCFG_DMA_ERROR);
	memcpy(p, &result, 4);
}

/*
 * 0x514-0x51b: the DMA address, big-endian. The high half first; a write
 * of the low half at 0x518 starts the transfer. Reads give "QEMU CFG".
 */
static int
dma_io(struct vmctx *ctx, int in, int port, int bytes, uint32_t *eax, void *arg)
{
	struct fwcfg *fc = arg;
	int off = port - FWCFG_PORT_DMA;
	uint32_t v = 0;

	(void)ctx;
	if (in) {
		if (off + bytes > 8) {
			*eax = 0xffffffff;
			return -1;
		}
		for (int i = 0; i < bytes; i++)
			v |= (uint32_t)(uint8_t)dma_signature[off + i]
			     << (8 * i);
		*eax = v;
		return 0;
	}
	if (bytes != 4 || (off != 0 && off != 4))
		return -1;
	v = be32toh(*eax);
	pthread_mutex_lock(&fc->lock);
	if (off == 0) {
		fc->dma_hi = v;
	} else {
		uint64_t gpa = (uint64_t)fc->dma_hi << 32 | v;

		fc->dma_hi = 0; /* 0 again after an operation */
		dma_run(fc, gpa);
	}
	pthread_mutex_unlock(&fc->lock);
	return 0;
}

/* A whole host file, at most FILE_MAX_SIZE bytes. */
static int
read_file(const char *path, uint8_t **data, uint32_t *size, char *err,
	  size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t got = 0;

	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > FILE_MAX_SIZE) {
		snprintf(err, errlen, "%s: not a regular file of at most 1 GiB",
			 path);
		close(fd);
		return -1;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	while (buf && got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		snprintf(err, errlen, "cannot read %s", path);
		free(buf);
		return -1;
	}
	*data = buf;
	*size = (uint32_t)got;
	return 0;
}

struct user_files {
	struct items *files;
	int rc;
};

/* fwcfg.files.N: name, and string or file. */
static int
user_file(const struct config *node, void *arg)
{
	struct user_files *uf = arg;
	const char *name = config_get(node, "name");
	const char *str = config_get(node, "string");
	const char *path = config_get(node, "file");
	char err[512];
	uint8_t *data;
	uint32_t size;

	if (!name || !!str == !!path) {
		fprintf(stderr,
			"bhyve: fwcfg.files.%s: needs a name and "
			"either string or file\n",
			config_node_name(node));
		uf->rc = -1;
		return 1;
	}
	if (!*name || strlen(name) >= FWCFG_NAME_MAX) {
		fprintf(stderr,
			"bhyve: fwcfg: file name '%s' must be 1 to %d "
			"characters\n",
			name, FWCFG_NAME_MAX - 1);
		uf->rc = -1;
		return 1;
	}
	if (str) {
		uf->rc = add_bytes(uf->files, 0, name, str,
				   (uint32_t)strlen(str) + 1);
		return uf->rc;
	}
	if (read_file(path, &data, &size, err, sizeof(err)) < 0) {
		fprintf(stderr, "bhyve: fwcfg: file %s: %s\n", name, err);
		uf->rc = -1;
		return 1;
	}
	uf->rc = items_add(uf->files, 0, name, data, size);
	return uf->rc;
}

/* etc/e820: the memory map as packed little-endian entries (QEMU's). */
static int
add_e820(struct items *files, struct vmctx *ctx)
{
	struct e820_entry e[E820_SLOTS];
	int n = e820_build(ctx, e, E820_SLOTS);
	uint8_t *buf;

	if (n < 0) {
		fprintf(stderr, "bhyve: fwcfg: cannot build the e820 map\n");
		return -1;
	}
	buf = calloc((size_t)n + 1, E820_ENTRY);
	if (!buf)
		return -1;
	for (int i = 0; i < n; i++) {
		uint64_t base = htole64(e[i].addr), len = htole64(e[i].len);
		uint32_t type = htole32(e[i].type);

		memcpy(buf + i * E820_ENTRY, &base, 8);
		memcpy(buf + i * E820_ENTRY + 8, &len, 8);
		memcpy(buf + i * E820_ENTRY + 16, &type, 4);
	}
	return items_add(files, 0, "etc/e820", buf, (uint32_t)n * E820_ENTRY);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->name,
		      ((const struct item *)b)->name);
}

/* After sorting, a name given twice sits next to itself. */
static int
check_names(const struct items *files)
{
	for (int i = 1; i < files->n; i++) {
		if (strcmp(files->v[i].name, files->v[i - 1].name) != 0)
			continue;
		fprintf(stderr, "bhyve: fwcfg: file '%s' is given twice\n",
			files->v[i].name);
		return -1;
	}
	return 0;
}

/* The directory (fw_cfg.rst "File Directory"), all fields big-endian. */
static int
add_directory(struct fwcfg *fc, struct items *files)
{
	size_t len = 4 + (size_t)files->n * FWCFG_FILE_ENTRY;
	uint8_t *dir = calloc(1, len);
	uint32_t count = htobe32((uint32_t)files->n);

	if (!dir)
		return -1;
	memcpy(dir, &count, 4);
	for (int i = 0; i < files->n; i++) {
		uint8_t *e = dir + 4 + i * FWCFG_FILE_ENTRY;
		uint32_t size = htobe32(files->v[i].size);
		uint16_t sel = htobe16((uint16_t)(FWCFG_FILE_FIRST + i));

		memcpy(e, &size, 4);
		memcpy(e + 4, &sel, 2);
		memcpy(e + 8, files->v[i].name, strlen(files->v[i].name));
	}
	return items_add(&fc->items, FWCFG_FILE_DIR, NULL, dir, (uint32_t)len);
}

/* Move the sorted files into the device, selectors from 0x20. */
static int
add_files(struct fwcfg *fc, struct vmctx *ctx, struct config *cfg)
{
	struct items files = {0};
	struct user_files uf = {&files, 0};
	struct config *node = config_node(cfg, "fwcfg.files");
	int rc = -1;

	if (items_add(&files, 0, "bootorder", NULL, 0) < 0 ||
	    add_e820(&files, ctx) < 0)
		goto out;
	if (node && !config_is_leaf(node))
		config_foreach(node, user_file, &uf);
	if (uf.rc < 0)
		goto out;
	qsort(files.v, (size_t)files.n, sizeof(files.v[0]), name_cmp);
	if (check_names(&files) < 0 || add_directory(fc, &files) < 0)
		goto out;
	for (int i = 0; i < files.n; i++) {
		struct item *f = &files.v[i];

		if (items_add(&fc->items, (uint16_t)(FWCFG_FILE_FIRST + i),
			      f->name, f->data, f->size) < 0)
			goto out;
		f->data = NULL; /* the device owns it now */
	}
	rc = 0;
out:
	items_free(&files);
	return rc;
}

/*
 * A bzImage (Linux boot protocol, "HdrS" at 0x202) is split as QEMU
 * splits it: the setup sectors (setup_sects at 0x1f1, 0 meaning 4, plus
 * the boot sector) in SETUP_DATA, the rest in KERNEL_DATA.
 */
static int
add_kernel(struct items *it, const char *path)
{
	uint8_t *img;
	uint32_t size, setup = 0;
	char err[512];

	if (read_file(path, &img, &size, err, sizeof(err)) < 0) {
		fprintf(stderr, "bhyve: fwcfg: kernel: %s\n", err);
		return -1;
	}
	if (size > 0x206 && !memcmp(img + 0x202, "HdrS", 4))
		setup = ((img[0x1f1] ? img[0x1f1] : 4) + 1) * 512u;
	if (setup > size) {
		fprintf(stderr, "bhyve: fwcfg: kernel %s: truncated bzImage\n",
			path);
		free(img);
		return -1;
	}
	if (add_le(it, FWCFG_SETUP_SIZE, setup, 4) < 0 ||
	    add_bytes(it, FWCFG_SETUP_DATA, NULL, img, setup) < 0 ||
	    add_le(it, FWCFG_KERNEL_SIZE, size - setup, 4) < 0 ||
	    add_bytes(it, FWCFG_KERNEL_DATA, NULL, img + setup, size - setup) <
		0) {
		free(img);
		return -1;
	}
	free(img);
	return 0;
}

static int
add_boot(struct items *it, struct config *cfg)
{
	const char *kernel = config_get(cfg, "fwcfg.kernel");
	const char *initrd = config_get(cfg, "fwcfg.initrd");
	const char *cmdline = config_get(cfg, "fwcfg.cmdline");
	char err[512];

	if (kernel && add_kernel(it, kernel) < 0)
		return -1;
	if (initrd) {
		uint8_t *data;
		uint32_t size;

		if (read_file(initrd, &data, &size, err, sizeof(err)) < 0) {
			fprintf(stderr, "bhyve: fwcfg: initrd: %s\n", err);
			return -1;
		}
		if (add_le(it, FWCFG_INITRD_SIZE, size, 4) < 0 ||
		    items_add(it, FWCFG_INITRD_DATA, NULL, data, size) < 0)
			return -1;
	}
	if (cmdline) {
		uint32_t len = (uint32_t)strlen(cmdline) + 1;

		if (add_le(it, FWCFG_CMDLINE_SIZE, len, 4) < 0 ||
		    add_bytes(it, FWCFG_CMDLINE_DATA, NULL, cmdline, len) < 0)
			return -1;
	}
	return 0;
}

static int
add_fixed(struct items *it, struct vmctx *ctx)
{
	uint64_t ncpus =
	    vm_get_ncpus(ctx) > 0 ? (uint64_t)vm_get_ncpus(ctx) : 1;
	uint64_t ram = vm_get_lowmem_size(ctx) + vm_get_highmem_size(ctx);

	if (add_bytes(it, FWCFG_SIGNATURE, NULL, "QEMU", 4) < 0 ||
	    add_le(it, FWCFG_ID, FWCFG_ID_TRADITIONAL | FWCFG_ID_DMA, 4) < 0 ||
	    add_le(it, FWCFG_NB_CPUS, ncpus, 2) < 0 ||
	    add_le(it, FWCFG_MAX_CPUS, ncpus, 2) < 0 ||
	    add_le(it, FWCFG_RAM_SIZE, ram, 8) < 0)
		return -1;
	return 0;
}

#define NPORTS 2

static void
fwcfg_ports(struct fwcfg *fc, struct inout_port ports[NPORTS])
{
	ports[0] = (struct inout_port){"fwcfg",	       FWCFG_PORT_SEL, 2,
				       IOPORT_F_INOUT, port_io,	       fc};
	ports[1] = (struct inout_port){"fwcfg-dma",    FWCFG_PORT_DMA, 8,
				       IOPORT_F_INOUT, dma_io,	       fc};
}

static void
fwcfg_deinit(void *arg)
{
	struct fwcfg *fc = arg;
	struct inout_port ports[NPORTS];

	fwcfg_ports(fc, ports);
	for (int i = 0; fc->ports && i < NPORTS; i++)
		unregister_inout(fc->ctx, &ports[i]);
	items_free(&fc->items);
	pthread_mutex_destroy(&fc->lock);
	free(fc);
}

static int
fwcfg_register(struct vmctx *ctx, struct fwcfg *fc)
{
	struct inout_port ports[NPORTS];

	fwcfg_ports(fc, ports);
	for (int i = 0; i < NPORTS; i++) {
		const char *owner;

		if (register_inout(ctx, &ports[i]) == 0)
			continue;
		owner = inout_owner(ctx, ports[i].port);
		for (int p = ports[i].port;
		     !owner && p < ports[i].port + ports[i].size; p++)
			owner = inout_owner(ctx, p);
		fprintf(stderr, "bhyve: fwcfg: ports 0x%x-0x%x are taken%s%s\n",
			ports[i].port, ports[i].port + ports[i].size - 1,
			owner ? " by " : "", owner ? owner : "");
		while (--i >= 0)
			unregister_inout(ctx, &ports[i]);
		return -1;
	}
	fc->ports = true;
	return 0;
}

static int
fwcfg_init(struct vmctx *ctx, const struct lpc_dev *d)
{
	struct config *cfg = machine_config(ctx);
	const char *mode = config_get(cfg, "lpc.fwcfg");
	struct fwcfg *fc;

	if (!mode || strcmp(mode, "qemu") != 0) {
		fprintf(stderr,
			"bhyve: lpc.fwcfg=%s: only the qemu interface "
			"is offered (-l fwcfg,qemu)\n",
			mode ? mode : "");
		return -1;
	}
	fc = calloc(1, sizeof(*fc));
	if (!fc)
		return -1;
	pthread_mutex_init(&fc->lock, NULL);
	fc->ctx = ctx;
	if (machine_add_dev(ctx, d, fc, fwcfg_deinit) < 0) {
		fwcfg_deinit(fc);
		return -1;
	}
	if (add_fixed(&fc->items, ctx) < 0 || add_boot(&fc->items, cfg) < 0 ||
	    add_files(fc, ctx, cfg) < 0 || fwcfg_register(ctx, fc) < 0) {
		machine_drop_dev(ctx, d);
		return -1;
	}
	return 0;
}

static int
fwcfg_lpc_parse(struct config *cfg, const char *name, const char *opts,
		char *err, size_t errlen)
{
	(void)name;
	if (!strcmp(opts, "qemu"))
		return config_set(cfg, "lpc.fwcfg", "qemu", err, errlen);
	if (!strcmp(opts, "bhyve"))
		snprintf(err, errlen,
			 "-l fwcfg,bhyve: bhyve's fwctl "
			 "interface is not supported: use -l "
			 "fwcfg,qemu");
	else
		snprintf(err, errlen, "-l fwcfg%s%s: expected -l fwcfg,qemu",
			 *opts ? "," : "", opts);
	return -1;
}

static const struct lpc_dev lpc_fwcfg = {
    .name = "fwcfg",
    .help = "QEMU fw_cfg: -l fwcfg,qemu (files with -f)",
    .parse = fwcfg_lpc_parse,
    .init = fwcfg_init,
};
LPC_DEV_SET(lpc_fwcfg);

struct dup_check {
	const char *name;
	size_t len;
	int count;
	bool dup;
};

static int
dup_one(const struct config *node, void *arg)
{
	struct dup_check *d = arg;
	const char *n = config_get(node, "name");

	d->count++;
	if (n && strlen(n) == d->len && !memcmp(n, d->name, d->len))
		d->dup = true;
	return 0;
}

int
fwcfg_parse_file(struct config *cfg, const char *arg, char *err, size_t errlen)
{
	const char *name = arg, *comma, *val, *kind;
	struct config *files;
	struct dup_check d;
	char key[64], nm[FWCFG_NAME_MAX];

	if (!strncmp(name, "name=", 5))
		name += 5;
	comma = strchr(name, ',');
	if (!comma || comma == name) {
		snprintf(err, errlen,
			 "-f %s: expected [name=]NAME,string="
			 "VALUE or [name=]NAME,file=PATH",
			 arg);
		return -1;
	}
	d = (struct dup_check){name, (size_t)(comma - name), 0, false};
	if (d.len >= FWCFG_NAME_MAX) {
		snprintf(err, errlen,
			 "-f %s: the name is longer than %d "
			 "characters",
			 arg, FWCFG_NAME_MAX - 1);
		return -1;
	}
	val = comma + 1;
	kind = !strncmp(val, "string=", 7) ? "string"
	       : !strncmp(val, "file=", 5) ? "file"
					   : NULL;
	if (!kind || (kind[0] == 'f' && !val[5])) {
		snprintf(err, errlen,
			 "-f %s: expected string=VALUE or "
			 "file=PATH after the name",
			 arg);
		return -1;
	}
	val += strlen(kind) + 1;
	files = config_node(cfg, "fwcfg.files");
	if (files && !config_is_leaf(files))
		config_foreach(files, dup_one, &d);
	if (d.dup) {
		snprintf(err, errlen, "-f %s: '%.*s' is already given", arg,
			 (int)d.len, name);
		return -1;
	}
	memcpy(nm, name, d.len);
	nm[d.len] = '\0';
	snprintf(key, sizeof(key), "fwcfg.files.%d.name", d.count);
	if (config_set(cfg, key, nm, err, errlen) < 0)
		return -1;
	snprintf(key, sizeof(key), "fwcfg.files.%d.%s", d.count, kind);
	return config_set(cfg, key, val, err, errlen);
}

/*
 * -f and the fwcfg.* boot items mean nothing without -l fwcfg,qemu: say so
 * rather than boot a guest that never sees them.
 */
static int
fwcfg_check(struct vmctx *ctx)
{
	struct config *cfg = machine_config(ctx);

	if (config_node(cfg, "fwcfg") && !config_node(cfg, "lpc.fwcfg")) {
		fprintf(stderr, "bhyve: -f and fwcfg.* settings need -l "
				"fwcfg,qemu\n");
		return -1;
	}
	return 0;
}

static const struct sysdev fwcfg_sysdev = {
    .name = "fwcfg-check",
    .order = 90,
    .init = fwcfg_check,
};
SYSDEV_SET(fwcfg_sysdev);
