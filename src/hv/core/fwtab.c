/* The walks over what devices say about themselves (fwtab.h). */
#include <stdlib.h>
#include <string.h>

#include "byteorder.h"
#include "fwtab.h"
#include "machine.h"

#define MAX_DEVS 64

/* fn for every device with fw_ops: sysdevs in order, then -l devices. */
static int
walk(struct vmctx *ctx,
     int (*fn)(struct vmctx *ctx, const void *desc, const struct fw_ops *fw,
	       void *arg),
     void *arg)
{
	const struct sysdev *sd[MAX_DEVS];
	const struct lpc_dev *ld[MAX_DEVS];
	int n = sysdev_sorted(sd, MAX_DEVS);

	for (int i = 0; i < n; i++)
		if (sd[i]->fw && fn(ctx, sd[i], sd[i]->fw, arg) < 0)
			return -1;
	n = lpc_dev_sorted(ld, MAX_DEVS);
	for (int i = 0; i < n; i++)
		if (ld[i]->fw && lpc_dev_configured(ctx, ld[i]) &&
		    fn(ctx, ld[i], ld[i]->fw, arg) < 0)
			return -1;
	return 0;
}

struct dsdt_walk {
	enum fw_scope scope;
	struct aml *a;
};

static int
dsdt_one(struct vmctx *ctx, const void *desc, const struct fw_ops *fw,
	 void *arg)
{
	struct dsdt_walk *w = arg;

	if (!fw->dsdt || fw->dsdt_scope != w->scope)
		return 0;
	return fw->dsdt(ctx, desc, w->a);
}

int
fw_dsdt(struct vmctx *ctx, enum fw_scope scope, struct aml *a)
{
	struct dsdt_walk w = {scope, a};

	return walk(ctx, dsdt_one, &w);
}

struct table_walk {
	int (*fn)(const uint8_t *t, size_t len, void *arg);
	void *arg;
};

/* Big enough for any fixed-size table a device has (HPET 56, MCFG 60). */
#define TABLE_MAX 256

static int
table_one(struct vmctx *ctx, const void *desc, const struct fw_ops *fw,
	  void *arg)
{
	struct table_walk *w = arg;
	uint8_t buf[TABLE_MAX] = {0};
	int len;

	if (!fw->acpi_table)
		return 0;
	len = fw->acpi_table(ctx, desc, buf, sizeof(buf));
	if (len <= 0)
		return len;
	return w->fn(buf, (size_t)len, w->arg);
}

int
fw_acpi_tables(struct vmctx *ctx,
	       int (*fn)(const uint8_t *t, size_t len, void *arg), void *arg)
{
	struct table_walk w = {fn, arg};

	return walk(ctx, table_one, &w);
}

static int
fadt_one(struct vmctx *ctx, const void *desc, const struct fw_ops *fw,
	 void *arg)
{
	if (fw->fadt)
		fw->fadt(ctx, desc, arg);
	return 0;
}

void
fw_fadt(struct vmctx *ctx, struct fw_fadt *f)
{
	memset(f, 0, sizeof(*f));
	(void)walk(ctx, fadt_one, f);
}

static int
mp_one(struct vmctx *ctx, const void *desc, const struct fw_ops *fw,
       void *arg)
{
	return fw->mptable ? fw->mptable(ctx, desc, arg) : 0;
}

int
fw_mptable(struct vmctx *ctx, struct fw_mp *mp)
{
	if (walk(ctx, mp_one, mp) < 0 || mp->nomem)
		return -1;
	return 0;
}

void
fw_mp_bus(struct fw_mp *mp, int bus)
{
	if (bus >= 0 && bus < 256)
		mp->bus_used[bus] = true;
}

void
fw_mp_intx(struct fw_mp *mp, const struct fw_intx *e)
{
	if (mp->nomem)
		return;
	if (mp->nintx == mp->cap) {
		int cap = mp->cap ? 2 * mp->cap : 16;
		struct fw_intx *v = realloc(mp->intx, cap * sizeof(*v));

		if (!v) {
			mp->nomem = true;
			return;
		}
		mp->intx = v;
		mp->cap = cap;
	}
	mp->intx[mp->nintx++] = *e;
}

void
fw_mp_free(struct fw_mp *mp)
{
	free(mp->intx);
	mp->intx = NULL;
	mp->nintx = mp->cap = 0;
}

int
fw_isa_irqs(struct fw_isa_irq *out, int max)
{
	const struct sysdev *sd[MAX_DEVS];
	int n = sysdev_sorted(sd, MAX_DEVS), k = 0;

	for (int i = 0; i < n; i++)
		for (int j = 0; sd[i]->fw && j < sd[i]->fw->nisa_irqs; j++)
			if (k < max)
				out[k++] = sd[i]->fw->isa_irqs[j];
	return k;
}

const struct fw_isa_irq *
fw_isa_irq(int irq)
{
	const void **p;

	SET_FOREACH(p, sysdev_set)
	{
		const struct sysdev *d = *p;

		for (int j = 0; d->fw && j < d->fw->nisa_irqs; j++)
			if (d->fw->isa_irqs[j].irq == irq)
				return &d->fw->isa_irqs[j];
	}
	return NULL;
}

int
fw_reserved(struct e820_entry *out, int max)
{
	const struct sysdev *sd[MAX_DEVS];
	int n = sysdev_sorted(sd, MAX_DEVS), k = 0;

	for (int i = 0; i < n; i++)
		for (int j = 0; sd[i]->fw && j < sd[i]->fw->nreserved; j++) {
			if (k == max)
				return -1;
			out[k++] = sd[i]->fw->reserved[j];
		}
	return k;
}

uint8_t
acpi_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum += b[i];
	return (uint8_t)-sum;
}

void
fw_acpi_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev,
	       const char *table_id)
{
	memcpy(t, sig, 4);
	le32_put(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, table_id, 8);
	le32_put(t + 24, ACPI_OEM_REVISION);
	memcpy(t + 28, "BHYV", 4); /* creator: us, not iasl */
	le32_put(t + 32, 1);
}

void
fw_acpi_finish(uint8_t *t)
{
	t[9] = 0;
	t[9] = acpi_checksum(t, le32_get(t + 4));
}

void
fw_gas(uint8_t *p, uint8_t space, uint8_t width, uint8_t access,
       uint64_t addr)
{
	p[0] = space;
	p[1] = width;
	p[2] = 0; /* bit offset */
	p[3] = access;
	le64_put(p + 4, addr);
}
