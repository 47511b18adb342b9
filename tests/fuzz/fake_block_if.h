/* The fuzz targets' block backend: see fake_block_if.c. */
#ifndef FAKE_BLOCK_IF_H
#define FAKE_BLOCK_IF_H

#include <stdbool.h>
#include <stddef.h>

/* Where guest memory is: every request buffer must be inside it. */
void fake_blockif_set_memory(const void *base, size_t len);
void fake_blockif_set_ro(bool ro);
/* Complete every queued request (and what their callbacks queue). */
int fake_blockif_run(void);
/*
 * On: a completer thread takes requests as they come, as block_if's
 * workers do, racing whatever the target does meanwhile. Off: it drains
 * the queue and stops.
 */
void fake_blockif_threaded(bool on);
/* Wait until nothing is queued or being completed. */
void fake_blockif_drain(void);

#endif
