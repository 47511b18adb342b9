/*
 * grub-bhyve's disk readers on hostile images (src/hv/grub_part.c,
 * grub_lvm.c, grub_fs_*.c): valid images first (MBR and GPT tables and
 * LVM2 PVs built here byte by byte; ext4, FAT and ISO9660 made with
 * mkfs.ext4 -d, mkfs.vfat + mcopy and xorriso), then each with a header
 * field out of range, truncated, looping (an EBR chain, a FAT chain, a
 * directory that contains itself, a SUSP continuation that points at
 * itself) or pointing past the disk (an extent, a cluster, a segment):
 * every case ends in an error or a bounded result, under ASan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "byteorder.h"
#include "grub_fs.h"
#include "grub_lvm.h"
#include "grub_part.h"

#define MIB (1u << 20)

static char tmpdir[64];

/* ---- helpers ---- */

static uint8_t *
read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void
run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("'%s' failed", cmd);
}

/* A tree of known files under tmpdir/t. */
static void
make_tree(void)
{
	run("mkdir -p %s/t/boot/grub %s/t/a/b && echo hello > %s/t/boot/hello.txt"
	    " && head -c 100000 /dev/urandom > %s/t/boot/big.bin"
	    " && ln -sf hello.txt %s/t/boot/link && echo deep > %s/t/a/b/f",
	    tmpdir, tmpdir, tmpdir, tmpdir, tmpdir, tmpdir);
}

static int
mount_mem(const struct gfs_ops *ops, struct gblk *b, const uint8_t *img,
	  size_t len, struct gfs *fs, char *err, size_t errlen)
{
	gblk_init_mem(b, img, len);
	fs->ops = ops;
	return ops->mount(b, &fs->fs, err, errlen);
}

static void
expect_file(struct gfs *fs, const char *path, const char *want)
{
	struct gfs_node n;
	char err[256], buf[256];

	assert_int_equal(gfs_lookup(fs, path, &n, err, sizeof(err)), 0);
	assert_int_equal(n.size, strlen(want));
	assert_int_equal(gfs_read(fs, &n, 0, buf, n.size, err, sizeof(err)), 0);
	assert_memory_equal(buf, want, n.size);
}

/* ---- MBR ---- */

static void
mbr_entry(uint8_t *sec, int i, uint8_t type, uint32_t lba, uint32_t count)
{
	uint8_t *e = sec + 446 + 16 * i;

	memset(e, 0, 16);
	e[4] = type;
	le32_put(e + 8, lba);
	le32_put(e + 12, count);
	le16_put(sec + 510, 0xaa55);
}

static uint8_t *
make_mbr(size_t *len)
{
	uint8_t *d = calloc(1, 8 * MIB);

	assert_non_null(d);
	mbr_entry(d, 0, 0x83, 2048, 2048);
	mbr_entry(d, 1, 0x05, 4096, 8192);
	/* EBR 1 at 4096: logical at +64; link to EBR 2 at ext+2048. */
	mbr_entry(d + 4096 * 512, 0, 0x83, 64, 512);
	mbr_entry(d + 4096 * 512, 1, 0x05, 2048, 1024);
	mbr_entry(d + 6144 * 512, 0, 0x0c, 64, 512);
	*len = 8 * MIB;
	return d;
}

static void
test_mbr(void **state)
{
	struct gpart_table t;
	struct gblk b;
	size_t len;
	uint8_t *d = make_mbr(&len);
	char err[256];

	(void)state;
	gblk_init_mem(&b, d, len);
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), 0);
	assert_string_equal(t.scheme, "msdos");
	assert_int_equal(t.n, 3);
	assert_string_equal(t.p[0].name, "msdos1");
	assert_string_equal(t.p[1].name, "msdos5");
	assert_int_equal(t.p[1].start, (4096 + 64) * 512ull);
	assert_string_equal(t.p[2].name, "msdos6");
	assert_int_equal(t.p[2].start, (6144 + 64) * 512ull);
	assert_ptr_equal(gpart_find(&t, "5"), &t.p[1]);
	assert_null(gpart_find(&t, "gpt1"));
	assert_null(gpart_find(&t, "msdos9"));

	/* A partition past the end of the disk is left out. */
	mbr_entry(d, 2, 0x83, 16000, 4096);
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 3);
	/* EBR 2 links back to EBR 1: a loop, after the partitions seen. */
	mbr_entry(d + 6144 * 512, 1, 0x05, 0 + 1, 1024);
	le32_put(d + 6144 * 512 + 446 + 16 + 8, 0);
	mbr_entry(d + 6144 * 512, 1, 0x05, 2048, 1024); /* to itself */
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "loops"));
	assert_int_equal(t.n, 3);
	/* A link past the extended partition ends the chain. */
	mbr_entry(d + 6144 * 512, 1, 0x05, 9000, 1);
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), 0);
	/* Bad flags: not a partition table at all. */
	d[446] = 0x12;
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), 0);
	assert_null(t.scheme);
	free(d);
}

/* A chain of 300 EBRs, each linking to the next: bounded. */
static void
test_mbr_long_chain(void **state)
{
	size_t len = 4 * MIB;
	uint8_t *d = calloc(1, len);
	struct gpart_table t;
	struct gblk b;
	char err[256];

	(void)state;
	mbr_entry(d, 0, 0x05, 1, 8000);
	for (int i = 0; i < 300; i++) {
		uint8_t *ebr = d + (1 + i * 2) * 512;

		mbr_entry(ebr, 0, 0x83, 1, 1);
		mbr_entry(ebr, 1, 0x05, (i + 1) * 2, 1);
	}
	gblk_init_mem(&b, d, len);
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), -1);
	assert_int_equal(t.n, GPART_MAX);
	free(d);
}

/* ---- GPT ---- */

static void
gpt_header(uint8_t *d, uint64_t sectors, uint64_t lba, uint64_t entries,
	   uint32_t n, uint32_t esize)
{
	uint8_t *h = d + lba * 512;

	memset(h, 0, 512);
	memcpy(h, "EFI PART", 8);
	le32_put(h + 8, 0x10000);
	le32_put(h + 12, 92);
	le64_put(h + 24, lba);
	le64_put(h + 32, lba == 1 ? sectors - 1 : 1);
	le64_put(h + 40, 34);
	le64_put(h + 48, sectors - 34);
	le64_put(h + 72, entries);
	le32_put(h + 80, n);
	le32_put(h + 84, esize);
	/* The entry array's CRC when it lies on the 8 MiB test disk. */
	if (entries * 512 + (uint64_t)n * esize <= sectors * 512)
		le32_put(h + 88,
			 gpart_crc32(d + entries * 512, (size_t)n * esize));
	le32_put(h + 16, gpart_crc32(h, 92));
}

static uint8_t *
make_gpt(size_t len)
{
	uint64_t sectors = len / 512;
	uint8_t *d = calloc(1, len);
	uint8_t *e = d + 2 * 512;

	assert_non_null(d);
	mbr_entry(d, 0, 0xee, 1, (uint32_t)(sectors - 1));
	for (int i = 0; i < 2; i++) {
		memset(e + 128 * (i == 0 ? 0 : 3), 0x11 + i, 16);
		le64_put(e + 128 * (i == 0 ? 0 : 3) + 32, 2048 + i * 4096);
		le64_put(e + 128 * (i == 0 ? 0 : 3) + 40, 2048 + i * 4096 + 2047);
	}
	memcpy(d + (sectors - 33) * 512, e, 128 * 128);
	gpt_header(d, sectors, 1, 2, 128, 128);
	gpt_header(d, sectors, sectors - 1, sectors - 33, 128, 128);
	return d;
}

static void
test_gpt(void **state)
{
	size_t len = 8 * MIB;
	uint64_t sectors = len / 512;
	uint8_t *d = make_gpt(len);
	struct gpart_table t;
	struct gblk b;
	char err[256];

	(void)state;
	gblk_init_mem(&b, d, len);
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), 0);
	assert_string_equal(t.scheme, "gpt");
	assert_int_equal(t.n, 2);
	assert_string_equal(t.p[0].name, "gpt1");
	assert_string_equal(t.p[1].name, "gpt4"); /* its index in the array */
	assert_int_equal(t.p[1].len, 2048 * 512);
	/* Primary header CRC broken: the backup is used. */
	d[512 + 40] ^= 1;
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 2);
	/* Both broken: an error. */
	d[(sectors - 1) * 512 + 40] ^= 1;
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "GPT"));
	/* Huge entry counts, odd entry sizes, entries past the disk. */
	gpt_header(d, sectors, sectors - 1, sectors - 33, 128, 128);
	gpt_header(d, sectors, 1, 2, 0x7fffffff, 128);
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 2); /* from the backup */
	gpt_header(d, sectors, 1, 2, 128, 200);
	d[(sectors - 1) * 512] = 'X';
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), -1);
	gpt_header(d, sectors, 1, sectors - 2, 128, 128);
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), -1);
	/* An entry past the end of the disk is left out. */
	le64_put(d + 2 * 512 + 40, sectors + 10);
	gpt_header(d, sectors, 1, 2, 128, 128);
	assert_int_equal(gpart_scan(&b, &t, err, sizeof(err)), 0);
	assert_int_equal(t.n, 1);
	/* Truncated: nothing read past the end. */
	gblk_init_mem(&b, d, 1024);
	gpart_scan(&b, &t, err, sizeof(err));
	free(d);
}

/* ---- LVM ---- */

static const char *const pv_uuid = "abcdefghijklmnopqrstuvwxyz012345";

static void
put_pv(uint8_t *d, const char *text)
{
	uint8_t *l = d + 512, *m = d + 4096;
	size_t n = strlen(text) + 1;

	memcpy(l, "LABELONE", 8);
	le64_put(l + 8, 1);
	le32_put(l + 20, 32);
	memcpy(l + 24, "LVM2 001", 8);
	memcpy(l + 32, pv_uuid, 32);
	le64_put(l + 72, 1 * MIB);
	le64_put(l + 104, 4096);
	le64_put(l + 112, MIB - 4096);
	le32_put(l + 16, glvm_crc(l + 20, 512 - 20));
	memset(m, 0, 512);
	memcpy(m + 4, " LVM2 x[5A%r0N*>", 16);
	le32_put(m + 20, 1);
	le64_put(m + 24, 4096);
	le64_put(m + 32, MIB - 4096);
	le64_put(m + 40, 512);
	le64_put(m + 48, n);
	memcpy(m + 512, text, n);
	le32_put(m + 56, glvm_crc(m + 512, n));
	le32_put(m, glvm_crc(m + 4, 512 - 4));
}

static char *
vg_text(const char *seg_extra, int pe, int count, const char *type)
{
	char *s;

	assert_true(asprintf(&s,
			     "vg-a {\nid = \"x\"\nextent_size = 2048 # 1 MiB\n"
			     "physical_volumes {\npv0 {\nid = \"abcdef-ghij-klmn-"
			     "opqr-stuv-wxyz-012345\"\npe_start = 2048\n}\n}\n"
			     "logical_volumes {\nroot {\nstatus = [\"READ\", "
			     "\"VISIBLE\"]\nsegment_count = 1\nsegment1 {\n"
			     "start_extent = 0\nextent_count = %d\ntype = \"%s\"\n"
			     "stripe_count = 1\nstripes = [\"pv0\", %d]\n%s}\n}\n"
			     "hidden {\nstatus = [\"READ\"]\nsegment_count = 1\n}\n"
			     "}\n}\ncontents = \"Text Format Volume Group\"\n",
			     count, type, pe, seg_extra) > 0);
	return s;
}

static int
scan_lvm(const uint8_t *d, size_t len, struct glvm_lv **lvs, char *err)
{
	struct gblk b;
	const struct gblk *p = &b;
	int n = -1;

	gblk_init_mem(&b, d, len);
	assert_int_equal(glvm_scan(&p, 1, lvs, &n, err, 256), 0);
	return n;
}

static void
test_lvm(void **state)
{
	size_t len = 8 * MIB;
	uint8_t *d = calloc(1, len);
	struct glvm_lv *lvs;
	char err[256] = "", *text, u[33];
	struct gblk b;
	uint8_t byte;

	(void)state;
	text = vg_text("", 2, 3, "striped");
	put_pv(d, text);
	free(text);
	d[4 * MIB] = 0x5a; /* LV byte 1 MiB: extent 1 = PE 3, at 1 + 3 MiB */
	gblk_init_mem(&b, d, len);
	assert_int_equal(glvm_is_pv(&b, u), 1);
	assert_string_equal(u, pv_uuid);
	assert_int_equal(scan_lvm(d, len, &lvs, err), 1);
	assert_string_equal(lvs[0].name, "lvm/vg--a-root");
	assert_string_equal(lvs[0].why, "");
	assert_int_equal(lvs[0].blk.size, 3 * MIB);
	assert_int_equal(gblk_read(&lvs[0].blk, MIB, &byte, 1), 0);
	assert_int_equal(byte, 0x5a);
	free(lvs);

	/* A segment past the end of its PV. */
	text = vg_text("", 6, 3, "striped");
	put_pv(d, text);
	free(text);
	assert_int_equal(scan_lvm(d, len, &lvs, err), 1);
	assert_non_null(strstr(lvs[0].why, "past the end"));
	free(lvs);
	/* Not linear. */
	text = vg_text("", 1, 1, "raid1");
	put_pv(d, text);
	free(text);
	assert_int_equal(scan_lvm(d, len, &lvs, err), 1);
	assert_non_null(strstr(lvs[0].why, "not supported"));
	free(lvs);
	/* Huge extents: no overflow. */
	text = vg_text("", 0x7fffffff, 0x7fffffff, "striped");
	put_pv(d, text);
	free(text);
	assert_int_equal(scan_lvm(d, len, &lvs, err), 1);
	assert_string_not_equal(lvs[0].why, "");
	free(lvs);
	/* Broken text: unclosed braces, deep nesting, a bad CRC. */
	put_pv(d, "vg { a { b { c = \"x\" }");
	assert_int_equal(scan_lvm(d, len, &lvs, err), 0);
	assert_non_null(strstr(err, "parse"));
	free(lvs);
	{
		char deep[200] = "";

		for (int i = 0; i < 40; i++)
			strcat(deep, "a{");
		put_pv(d, deep);
		assert_int_equal(scan_lvm(d, len, &lvs, err), 0);
		free(lvs);
	}
	text = vg_text("", 2, 3, "striped");
	put_pv(d, text);
	free(text);
	d[4096 + 600] ^= 1;
	assert_int_equal(scan_lvm(d, len, &lvs, err), 0);
	assert_non_null(strstr(err, "bad metadata text"));
	free(lvs);
	/* A label with a bad CRC is no PV. */
	d[512 + 40] ^= 1;
	assert_int_equal(glvm_is_pv(&b, u), 0);
	free(d);
}

/* ---- ext2/3/4 ---- */

static uint8_t *
make_ext4(size_t *len, const char *extra)
{
	char path[128];

	make_tree();
	snprintf(path, sizeof(path), "%s/e.img", tmpdir);
	run("mkfs.ext4 -q -F -L unit -O inline_data,metadata_csum,64bit "
	    "-d %s/t %s 4M && %s",
	    tmpdir, path, extra);
	return read_all(path, len);
}

static void
test_ext(void **state)
{
	struct gfs fs;
	struct gfs_info info;
	struct gblk b;
	size_t len;
	uint8_t *img = make_ext4(&len, "true");
	char err[256];
	struct gfs_node n;

	(void)state;
	assert_int_equal(mount_mem(&gfs_ext_ops, &b, img, len, &fs, err,
				   sizeof(err)),
			 0);
	fs.ops->info(fs.fs, &info);
	assert_string_equal(info.type, "ext2");
	assert_string_equal(info.label, "unit");
	expect_file(&fs, "/boot/hello.txt", "hello\n");
	expect_file(&fs, "/boot/link", "hello\n");
	expect_file(&fs, "/a/b/../b/./f", "deep\n");
	assert_int_equal(gfs_lookup(&fs, "/boot/nothing", &n, err, sizeof(err)),
			 -1);
	assert_string_equal(err, "file '/boot/nothing' not found");
	assert_int_equal(gfs_lookup(&fs, "/boot/hello.txt/x", &n, err,
				    sizeof(err)),
			 -1);
	gfs_umount(&fs);
	/* Truncated: the superblock's blocks do not fit. */
	assert_int_equal(mount_mem(&gfs_ext_ops, &b, img, len / 2, &fs, err,
				   sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "do not fit"));
	/* Header fields out of range, one at a time. */
	{
		static const struct {
			size_t off;
			uint32_t v;
			int width;
		} bad[] = {
		    {1024 + 24, 9, 4},	     /* log block size */
		    {1024 + 32, 0, 4},	     /* blocks per group */
		    {1024 + 40, 0, 4},	     /* inodes per group */
		    {1024 + 0x58, 100, 2},   /* inode size */
		    {1024 + 0xfe, 3, 2},     /* descriptor size */
		    {1024 + 4, 0xffffffff, 4}, /* block count */
		    {1024 + 20, 0xfffffff, 4}, /* first data block */
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			uint8_t *c = malloc(len);

			memcpy(c, img, len);
			if (bad[i].width == 4)
				le32_put(c + bad[i].off, bad[i].v);
			else
				le16_put(c + bad[i].off, (uint16_t)bad[i].v);
			assert_int_equal(mount_mem(&gfs_ext_ops, &b, c, len,
						   &fs, err, sizeof(err)),
					 -1);
			free(c);
		}
	}
	free(img);
}

/* An extent past the disk, a directory that holds itself. */
static void
test_ext_corrupt(void **state)
{
	struct gfs fs;
	struct gblk b;
	size_t len;
	uint8_t *img;
	char err[256], buf[4096], cmd[512];
	struct gfs_node n;

	(void)state;
	snprintf(cmd, sizeof(cmd),
		 "debugfs -w -R 'sif /boot/big.bin block[5] 0x7ffffff' %s/e.img"
		 " >/dev/null 2>&1 && debugfs -w -R 'link /a /a/b/up' %s/e.img"
		 " >/dev/null 2>&1",
		 tmpdir, tmpdir);
	img = make_ext4(&len, cmd);
	assert_int_equal(mount_mem(&gfs_ext_ops, &b, img, len, &fs, err,
				   sizeof(err)),
			 0);
	assert_int_equal(gfs_lookup(&fs, "/boot/big.bin", &n, err, sizeof(err)),
			 0);
	assert_int_equal(gfs_read(&fs, &n, 0, buf, sizeof(buf), err,
				  sizeof(err)),
			 -1);
	/* /a/b/up is /a: a loop that any path walks through finitely. */
	expect_file(&fs, "/a/b/up/b/up/b/up/b/f", "deep\n");
	{
		char path[2048] = "/a";

		for (int i = 0; i < 100; i++)
			strcat(path, "/b/up");
		assert_int_equal(gfs_lookup(&fs, path, &n, err, sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "too deep"));
	}
	gfs_umount(&fs);
	free(img);
}

/* ---- FAT ---- */

static uint8_t *
make_fat(size_t *len, const char *fatopt, int kib)
{
	char path[128];

	make_tree();
	snprintf(path, sizeof(path), "%s/f.img", tmpdir);
	run("rm -f %s && mkfs.vfat %s -n UNITFAT -i 0badcafe -C %s %d >/dev/null"
	    " && mcopy -s -i %s %s/t/boot %s/t/a ::/ && echo x > '%s/Long "
	    "Name.Text' && mcopy -i %s '%s/Long Name.Text' ::/",
	    path, fatopt, path, kib, path, tmpdir, tmpdir, tmpdir, path,
	    tmpdir);
	return read_all(path, len);
}

static void
check_fat(const char *fatopt, int kib)
{
	struct gfs fs;
	struct gfs_info info;
	struct gblk b;
	size_t len;
	uint8_t *img = make_fat(&len, fatopt, kib);
	char err[256];

	assert_int_equal(mount_mem(&gfs_fat_ops, &b, img, len, &fs, err,
				   sizeof(err)),
			 0);
	fs.ops->info(fs.fs, &info);
	assert_string_equal(info.type, "fat");
	assert_string_equal(info.uuid, "0bad-cafe");
	assert_string_equal(info.label, "UNITFAT");
	expect_file(&fs, "/BOOT/HELLO.TXT", "hello\n");
	expect_file(&fs, "/a/b/f", "deep\n");
	expect_file(&fs, "/Long Name.Text", "x\n");
	{
		struct gfs_node n;
		uint8_t *big = malloc(100000);

		assert_int_equal(gfs_lookup(&fs, "/boot/big.bin", &n, err,
					    sizeof(err)),
				 0);
		assert_int_equal(gfs_read(&fs, &n, 1000, big, 99000, err,
					  sizeof(err)),
				 0);
		free(big);
	}
	gfs_umount(&fs);
	free(img);
}

static void
test_fat(void **state)
{
	(void)state;
	check_fat("-F 12", 1024);
	check_fat("-F 16 -s 1", 8192);
	check_fat("-F 32 -s 1", 34000);
}

static void
test_fat_corrupt(void **state)
{
	struct gfs fs;
	struct gblk b;
	size_t len;
	uint8_t *img = make_fat(&len, "-F 16 -s 1", 8192);
	uint32_t rsvd = le16_get(img + 14), bps = le16_get(img + 11);
	char err[256], buf[4096];
	struct gfs_node n;
	uint8_t *fat = img + rsvd * bps;

	(void)state;
	/* Header fields out of range: not FAT, or FAT but refused. */
	{
		static const struct {
			size_t off;
			uint16_t v;
			int r;
		} bad[] = {
		    {11, 0, 1}, {11, 300, 1}, {13, 3, 1}, {14, 0, 1},
		    {16, 0, 1}, {22, 0, -1},  {19, 0xffff, -1}, {17, 0, -1},
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			uint8_t save[2];

			memcpy(save, img + bad[i].off, 2);
			if (bad[i].off == 13 || bad[i].off == 16)
				img[bad[i].off] = (uint8_t)bad[i].v;
			else
				le16_put(img + bad[i].off, bad[i].v);
			assert_int_equal(mount_mem(&gfs_fat_ops, &b, img, len,
						   &fs, err, sizeof(err)),
					 bad[i].r);
			memcpy(img + bad[i].off, save, 2);
		}
	}
	/* A file whose chain loops (its first cluster points to itself),
	 * holds a free cluster, or leaves the volume. Each mounted afresh:
	 * the reader caches a block of the FAT. */
	assert_int_equal(mount_mem(&gfs_fat_ops, &b, img, len, &fs, err,
				   sizeof(err)),
			 0);
	assert_int_equal(gfs_lookup(&fs, "/boot/big.bin", &n, err, sizeof(err)),
			 0);
	gfs_umount(&fs);
	{
		static const struct {
			int self;
			uint16_t v;
			const char *why;
		} chain[] = {{1, 0, "loops"}, {0, 0, "broken"},
			     {0, 0xfff0, "broken"}};

		for (size_t i = 0; i < 3; i++) {
			le16_put(fat + 2 * n.a,
				 chain[i].self ? (uint16_t)n.a : chain[i].v);
			assert_int_equal(mount_mem(&gfs_fat_ops, &b, img, len,
						   &fs, err, sizeof(err)),
					 0);
			assert_int_equal(gfs_read(&fs, &n, 90000, buf, 1000,
						  err, sizeof(err)),
					 -1);
			assert_non_null(strstr(err, chain[i].why));
			gfs_umount(&fs);
		}
	}
	/* Truncated past the FAT: the volume does not fit. */
	assert_int_equal(mount_mem(&gfs_fat_ops, &b, img, 64 * 1024, &fs, err,
				   sizeof(err)),
			 -1);
	free(img);
}

/* ---- ISO9660 ---- */

static uint8_t *
make_iso(size_t *len, const char *opts)
{
	char path[128];

	make_tree();
	snprintf(path, sizeof(path), "%s/i.iso", tmpdir);
	run("rm -f %s && xorriso -as mkisofs -quiet %s -V UNITISO -o %s %s/t "
	    "2>/dev/null",
	    path, opts, path, tmpdir);
	return read_all(path, len);
}

static void
test_iso(void **state)
{
	static const char *const opts[] = {"-R -J", "--norock -J", "--norock"};
	struct gfs fs;
	struct gfs_info info;
	struct gblk b;
	char err[256];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		size_t len;
		uint8_t *img = make_iso(&len, opts[i]);

		assert_int_equal(mount_mem(&gfs_iso_ops, &b, img, len, &fs, err,
					   sizeof(err)),
				 0);
		fs.ops->info(fs.fs, &info);
		assert_string_equal(info.type, "iso9660");
		assert_string_equal(info.label, "UNITISO");
		expect_file(&fs, "/boot/hello.txt", "hello\n");
		expect_file(&fs, "/A/B/F", "deep\n");
		if (i == 0)
			expect_file(&fs, "/boot/link", "hello\n");
		gfs_umount(&fs);
		free(img);
	}
}

static void
test_iso_corrupt(void **state)
{
	size_t len;
	uint8_t *img = make_iso(&len, "-R -J");
	uint8_t *pvd = img + 16 * 2048, *root;
	uint32_t root_lba = le32_get(pvd + 156 + 2);
	struct gfs fs;
	struct gblk b;
	struct gfs_node n;
	char err[256];

	(void)state;
	/* Block size, root extent: refused. */
	le16_put(pvd + 128, 512);
	assert_int_equal(mount_mem(&gfs_iso_ops, &b, img, len, &fs, err,
				   sizeof(err)),
			 -1);
	le16_put(pvd + 128, 2048);
	le32_put(pvd + 156 + 2, 0x7fffffff);
	assert_int_equal(mount_mem(&gfs_iso_ops, &b, img, len, &fs, err,
				   sizeof(err)),
			 -1);
	le32_put(pvd + 156 + 2, root_lba);
	/* Truncated: directories past the end fail, never read past it. */
	if (mount_mem(&gfs_iso_ops, &b, img, 20 * 2048, &fs, err,
		      sizeof(err)) == 0) {
		gfs_lookup(&fs, "/boot/hello.txt", &n, err, sizeof(err));
		gfs_umount(&fs);
	}
	/* The root's "." record: a CE continuation pointing at itself. */
	root = img + (size_t)root_lba * 2048;
	{
		uint8_t rlen = root[0];
		size_t su = 34 + 7; /* after SP */

		if (su + 28 <= rlen) {
			uint8_t *ce = root + su;

			memcpy(ce, "CE", 2);
			ce[2] = 28;
			ce[3] = 1;
			le32_put(ce + 4, root_lba);
			le32_put(ce + 12, (uint32_t)su);
			le32_put(ce + 20, 28);
		}
	}
	/* A subdirectory record whose extent is the root (a loop), and a
	 * record longer than its sector. */
	for (size_t i = root[0]; i < 2048 && root[i];) {
		uint8_t *r = root + i;

		if (r[25] & 2 && r[32] > 1) {
			le32_put(r + 2, root_lba);
			break;
		}
		i += r[0];
	}
	assert_int_equal(mount_mem(&gfs_iso_ops, &b, img, len, &fs, err,
				   sizeof(err)),
			 0);
	gfs_lookup(&fs, "/a/a/a/a/a/a/boot/hello.txt", &n, err, sizeof(err));
	root[root[0] + root[root[0]]] = 0;
	root[root[0]] = 250;
	root[2047] = 0;
	gfs_lookup(&fs, "/boot/hello.txt", &n, err, sizeof(err));
	gfs_umount(&fs);
	free(img);
}

static int
group_setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gimgtestXXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mbr),
	    cmocka_unit_test(test_mbr_long_chain),
	    cmocka_unit_test(test_gpt),
	    cmocka_unit_test(test_lvm),
	    cmocka_unit_test(test_ext),
	    cmocka_unit_test(test_ext_corrupt),
	    cmocka_unit_test(test_fat),
	    cmocka_unit_test(test_fat_corrupt),
	    cmocka_unit_test(test_iso),
	    cmocka_unit_test(test_iso_corrupt),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
