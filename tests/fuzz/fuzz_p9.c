/*
 * libFuzzer target: the 9P2000.L server (p9_server.c) on a temporary
 * directory, with messages from the fuzzer.
 *
 * Input:
 *   byte 0      flags: bit 0 read-only share, bit 1 frames are raw (the
 *               fuzzer writes size, type and tag itself), bit 2 no
 *               session set up first (no Tversion, Tattach of fid 0)
 *   then frames: len[2] then len bytes. Unless raw, a frame is type[1]
 *               then the body; the target puts size and tag in front.
 *               Each frame's reply gets room from its last byte's value
 *               (0: msize).
 *
 * Each run gets a fresh server over TOP/share, which is reset to a small
 * tree first: file "a", directory "d" with "d/b", symlinks "abs" (/etc)
 * and "up" (../outside), a FIFO "p". TOP/outside holds one canary file;
 * after the run the outside must be as it was (nothing escaped the share)
 * or the target aborts. ASan and UBSan catch the rest.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p9_server.h"

#define MSIZE 16384

static char top[64], share[96], outside[96], canary[128];
static struct stat canary_st;
static uint8_t req[MSIZE + 8], resp[MSIZE];

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_p9: %s\n", what);
	abort();
}

static void
put(const char *dir, const char *name, const char *text)
{
	char p[256];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fp = fopen(p, "w");
	if (!fp)
		die("cannot write the tree");
	fputs(text, fp);
	fclose(fp);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

static int
rm_all(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* libFuzzer ends with exit(): take the temporary tree with us. */
static void
cleanup(void)
{
	chmod(share, 0755);
	nftw(top, rm_all, 16, FTW_DEPTH | FTW_PHYS);
}

/* The share as every run starts it. */
static void
reset_share(void)
{
	char p[256];

	chmod(share, 0755);
	/* A run may leave directories without search permission. */
	nftw(share, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	put(share, "a", "hello");
	snprintf(p, sizeof(p), "%s/d", share);
	mkdir(p, 0755);
	put(p, "b", "inner");
	snprintf(p, sizeof(p), "%s/abs", share);
	if (symlink("/etc", p) < 0)
		die("symlink");
	snprintf(p, sizeof(p), "%s/up", share);
	if (symlink("../outside", p) < 0)
		die("symlink");
	snprintf(p, sizeof(p), "%s/p", share);
	mkfifo(p, 0644);
}

/* TOP holds share and outside only, outside holds the canary only. */
static void
check_outside(void)
{
	struct stat st;
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (lstat(canary, &st) < 0 || st.st_ino != canary_st.st_ino ||
	    st.st_mode != canary_st.st_mode ||
	    st.st_size != canary_st.st_size ||
	    st.st_mtim.tv_sec != canary_st.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != canary_st.st_mtim.tv_nsec || st.st_nlink != 1)
		die("the canary beside the share changed");
	d = opendir(outside);
	if (!d)
		die("the directory beside the share is gone");
	while ((de = readdir(d)))
		n++;
	closedir(d);
	if (n != 3)
		die("something appeared beside the share");
	d = opendir(top);
	n = 0;
	while (d && (de = readdir(d)))
		n++;
	if (d)
		closedir(d);
	if (n != 4)
		die("something appeared next to the share");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	strcpy(top, "/tmp/fuzz_p9.XXXXXX");
	if (!mkdtemp(top))
		die("mkdtemp");
	snprintf(share, sizeof(share), "%s/share", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	snprintf(canary, sizeof(canary), "%s/canary", outside);
	if (mkdir(share, 0755) < 0 || mkdir(outside, 0755) < 0)
		die("mkdir");
	put(outside, "canary", "canary");
	if (lstat(canary, &canary_st) < 0)
		die("stat");
	atexit(cleanup);
	return 0;
}

static void
send(struct p9_server *s, const uint8_t *m, size_t n, size_t room)
{
	size_t r = p9_server_handle(s, m, n, resp, room);

	if (r > room || (r && r < 7))
		die("a reply longer than its room or shorter than a header");
	if (r && (resp[0] | resp[1] << 8 | resp[2] << 16 |
		  (uint32_t)resp[3] << 24) != r)
		die("a reply's size field is not its length");
}

/* A message made here: size, type, tag, body. */
static size_t
frame(uint8_t type, const uint8_t *body, size_t n)
{
	size_t len = 7 + n;

	req[0] = (uint8_t)len;
	req[1] = (uint8_t)(len >> 8);
	req[2] = (uint8_t)(len >> 16);
	req[3] = 0;
	req[4] = type;
	req[5] = 1;
	req[6] = 0;
	memcpy(req + 7, body, n);
	return len;
}

static void
session(struct p9_server *s)
{
	static const uint8_t version[] = {0x00, 0x40, 0,   0,	8,   0,	  '9',
					  'P',	'2',  '0', '0', '0', '.', 'L'};
	static const uint8_t attach[] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
					 0, 0, 0, 0, 0,	   0,	 0};

	send(s, req, frame(100, version, sizeof(version)), sizeof(resp));
	send(s, req, frame(104, attach, sizeof(attach)), sizeof(resp));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p9_server *s;
	uint8_t flags;
	int fd;

	if (size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	reset_share();
	fd = open(share, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die("open the share");
	s = p9_server_new(fd, flags & 1, MSIZE);
	if (!s)
		die("p9_server_new");
	if (!(flags & 4))
		session(s);
	while (size >= 2) {
		size_t len = data[0] | (size_t)data[1] << 8, room, n;

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		room = len && data[len - 1] ? 11 + (size_t)data[len - 1] * 64
					    : sizeof(resp);
		if (room > sizeof(resp))
			room = sizeof(resp);
		if (flags & 2) {
			send(s, data, len, room);
		} else if (len >= 1) {
			n = len - 1 < MSIZE ? len - 1 : MSIZE;
			send(s, req, frame(data[0], data + 1, n), room);
		}
		data += len;
		size -= len;
	}
	p9_server_free(s);
	check_outside();
	return 0;
}
