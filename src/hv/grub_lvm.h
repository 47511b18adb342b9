/*
 * LVM2 volume groups on grub-bhyve's disks: physical volumes found by
 * their label ("LABELONE" in one of a device's first four sectors), the
 * volume group's metadata text read from a PV's metadata area, and its
 * linear logical volumes as byte ranges over the PVs (grub_blk.h), named
 * as GRUB names them: "lvm/VG-LV" (a '-' inside VG or LV doubled).
 *
 * Written here (no Debian library reads LVM2's on-disk format; liblvm2app
 * is gone): the label and metadata-area headers are checked (CRCs, magic,
 * offsets and sizes within the device), the metadata text is parsed with
 * bounds on its size, nesting and number of values, and each segment must
 * lie within its PV.
 */
#ifndef GRUB_LVM_H
#define GRUB_LVM_H

#include <stddef.h>
#include <stdint.h>

#include "grub_blk.h"

#define GLVM_MAX_LV 64
#define GLVM_NAME_MAX 160
#define GLVM_TEXT_MAX (4u << 20) /* metadata text read at most */

struct glvm_lv {
	char name[GLVM_NAME_MAX]; /* "lvm/vg-root" */
	struct gblk blk;	  /* valid when usable */
	char why[128];		  /* why not usable ("" when it is) */
};

/* Is b a PV? 1 with its UUID (32 characters, no dashes), 0 if not. */
int glvm_is_pv(const struct gblk *b, char uuid[33]);

/*
 * The logical volumes of every volume group whose PVs are among the n
 * devices (partitions and whole disks): *lvs malloc'ed, *nlv of them.
 * A broken PV or VG metadata is skipped with its reason in err (the
 * scan goes on); returns 0, or -1 when out of memory.
 */
int glvm_scan(const struct gblk *const *devs, int n, struct glvm_lv **lvs,
	      int *nlv, char *err, size_t errlen);

/* LVM's CRC (its own initial value, no final inversion). */
uint32_t glvm_crc(const void *data, size_t len);

#endif
