/*
 * libFuzzer target: grub-bhyve's partition tables (MBR with EBR chains,
 * GPT with its CRCs and backup) and LVM2 labels, metadata text and
 * volumes on an input that is a whole disk; each partition and volume
 * found is then read at its first and last byte through the byte-range
 * layer. Seeds: tests/fuzz/grub_seeds.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "grub_lvm.h"
#include "grub_part.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gpart_table *t = malloc(sizeof(*t));
	const struct gblk *devs[GPART_MAX + 1];
	struct gblk *v = calloc(GPART_MAX + 1, sizeof(*v));
	struct glvm_lv *lvs = NULL;
	char err[256], u[33];
	uint8_t byte;
	int n = 0, nlv = 0;

	if (!t || !v)
		abort();
	gblk_init_mem(&v[n], data, size);
	devs[n] = &v[n];
	n++;
	gpart_scan(&v[0], t, err, sizeof(err));
	gpart_find(t, "msdos5");
	gpart_find(t, "1");
	for (int i = 0; i < t->n; i++) {
		if (gblk_sub(&v[0], t->p[i].start, t->p[i].len, &v[n]) < 0)
			abort(); /* gpart_scan promised it fits */
		gblk_read(&v[n], 0, &byte, 1);
		gblk_read(&v[n], v[n].size - 1, &byte, 1);
		glvm_is_pv(&v[n], u);
		devs[n] = &v[n];
		n++;
	}
	glvm_scan(devs, n, &lvs, &nlv, err, sizeof(err));
	for (int i = 0; i < nlv; i++) {
		if (lvs[i].why[0] || lvs[i].blk.size == 0)
			continue;
		if (gblk_read(&lvs[i].blk, 0, &byte, 1) < 0 ||
		    gblk_read(&lvs[i].blk, lvs[i].blk.size - 1, &byte, 1) < 0)
			abort(); /* a volume must lie on its PVs */
	}
	free(lvs);
	free(v);
	free(t);
	return 0;
}
