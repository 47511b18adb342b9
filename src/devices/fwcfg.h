/*
 * QEMU's firmware configuration interface (QEMU docs/specs/fw_cfg.rst),
 * behind the LPC bridge as -l fwcfg,qemu, and bhyve's -f option for the
 * user's own files.
 */
#ifndef FWCFG_H
#define FWCFG_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* x86 I/O ports. */
#define FWCFG_PORT_SEL 0x510  /* 16-bit selector, little-endian */
#define FWCFG_PORT_DATA 0x511 /* 8-bit data */
#define FWCFG_PORT_DMA 0x514  /* 64-bit DMA address, big-endian */

/* Items (QEMU's FW_CFG_*). */
#define FWCFG_SIGNATURE 0x00
#define FWCFG_ID 0x01
#define FWCFG_RAM_SIZE 0x03
#define FWCFG_NB_CPUS 0x05
#define FWCFG_MAX_CPUS 0x0f
#define FWCFG_KERNEL_SIZE 0x08
#define FWCFG_INITRD_SIZE 0x0b
#define FWCFG_KERNEL_DATA 0x11
#define FWCFG_INITRD_DATA 0x12
#define FWCFG_CMDLINE_SIZE 0x14
#define FWCFG_CMDLINE_DATA 0x15
#define FWCFG_SETUP_SIZE 0x17
#define FWCFG_SETUP_DATA 0x18
#define FWCFG_FILE_DIR 0x19
#define FWCFG_FILE_FIRST 0x20

#define FWCFG_ID_TRADITIONAL 0x1
#define FWCFG_ID_DMA 0x2

/* FWCfgDmaAccess.control bits. */
#define FWCFG_DMA_ERROR 0x01
#define FWCFG_DMA_READ 0x02
#define FWCFG_DMA_SKIP 0x04
#define FWCFG_DMA_SELECT 0x08
#define FWCFG_DMA_WRITE 0x10

/* A directory entry: size, select (big-endian), reserved, name. */
#define FWCFG_FILE_ENTRY 64
#define FWCFG_NAME_MAX 56 /* with the NUL */

/*
 * -f [name=]NAME,string=VALUE or -f [name=]NAME,file=PATH (bhyve(8)):
 * becomes fwcfg.files.N.name and fwcfg.files.N.string or .file, N counting
 * from 0. A string item holds VALUE and its NUL, as bhyve's does.
 */
int fwcfg_parse_file(struct config *cfg, const char *arg, char *err,
		     size_t errlen);

#endif
