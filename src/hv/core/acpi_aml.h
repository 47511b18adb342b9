/*
 * A small AML encoder (ACPI 6.4 §20): enough to write bhyve's DSDT as
 * bytes, without iasl. Output goes into a growable buffer; constructs with
 * a PkgLength (Scope, Device, Method, Package, Buffer) are opened with
 * aml_*_begin and closed with aml_end, which inserts the PkgLength in
 * front of the body once its size is known.
 *
 * Errors (out of memory, a bad name, unbalanced begin/end) are sticky:
 * check aml_ok() once at the end.
 */
#ifndef ACPI_AML_H
#define ACPI_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16
#define AML_PKGLEN_MAX 0x0fffffffu /* 28 bits (§20.2.4) */

struct aml {
	uint8_t *buf;
	size_t len, cap;
	struct aml_frame {
		size_t start; /* first byte of the body */
		int kind;
	} stack[AML_MAX_DEPTH];
	int depth;
	bool error;
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* True when everything encoded so far is valid and every begin has ended. */
bool aml_ok(const struct aml *a);

void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);

/*
 * PkgLength (§20.2.4) of a package whose total size, counting the
 * PkgLength bytes themselves, is len: 1 to 4 bytes into out. 0 when len
 * does not fit in 28 bits, or is too small to hold its own encoding.
 */
int aml_pkglen_encode(uint32_t len, uint8_t out[4]);

/* Data objects (§20.2.3). */
void aml_integer(struct aml *a, uint64_t v); /* shortest form */
void aml_string(struct aml *a, const char *s);
/*
 * A NameString (§20.2.2): "\\" for the root, "^" to go up, then NameSegs
 * of 1-4 characters separated by dots, padded with '_' ("\\_SB.PCI0").
 */
void aml_namestring(struct aml *a, const char *path);
/* A compressed EISA id: "PNP0A08" -> 0x080AD041; 0 if malformed. */
uint32_t aml_eisaid(const char *id);

/* Name (NAME, ...): the caller encodes the value right after. */
void aml_name(struct aml *a, const char *name);
void aml_name_integer(struct aml *a, const char *name, uint64_t v);
void aml_name_string(struct aml *a, const char *name, const char *s);
void aml_name_eisaid(struct aml *a, const char *name, const char *id);

/* Constructs closed by aml_end. */
void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *name);
void aml_method_begin(struct aml *a, const char *name, int nargs,
		      bool serialized);
void aml_package_begin(struct aml *a, uint8_t nelems);
void aml_buffer_begin(struct aml *a); /* BufferSize is filled in by aml_end */
void aml_end(struct aml *a);

/* Statements for method bodies (§20.2.5). */
void aml_return(struct aml *a); /* Return: the caller encodes the value */
void aml_store_arg(struct aml *a, int arg, const char *name);

/*
 * ResourceTemplate (§6.4): a Buffer of resource descriptors closed by an
 * End Tag whose checksum is 0 ("treated as correct", §6.4.2.9).
 */
void aml_rt_begin(struct aml *a);
void aml_rt_end(struct aml *a);
/* IO (Decode16, min, max, align, len) */
void aml_rt_io(struct aml *a, uint16_t min, uint16_t max, uint8_t align,
	       uint8_t len);
/* IRQNoFlags () {irq} */
void aml_rt_irq(struct aml *a, uint8_t irq);
/* Memory32Fixed (ReadWrite or ReadOnly, base, len) */
void aml_rt_mem32_fixed(struct aml *a, bool rw, uint32_t base, uint32_t len);
/* Bridge windows: ResourceProducer, MinFixed, MaxFixed, PosDecode. */
void aml_rt_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_rt_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_rt_dword_mem(struct aml *a, bool cacheable, uint32_t min,
		      uint32_t max);
void aml_rt_qword_mem(struct aml *a, bool cacheable, uint64_t min,
		      uint64_t max);

#endif
