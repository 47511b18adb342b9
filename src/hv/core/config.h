/*
 * The configuration tree (bhyve_config(5)): string values at dotted paths.
 * The command line, -o key=value and -k FILE are three spellings of it;
 * devices read their settings from their own node.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stdio.h>

struct config;

struct config *config_create(void);
void config_free(struct config *root);

/* Set PATH to VALUE, making the nodes on the way. -1 with a message in err. */
int config_set(struct config *root, const char *path, const char *value,
	       char *err, size_t errlen);
/* Parse "key=value" (-o) and set it. */
int config_set_kv(struct config *root, const char *kv, char *err,
		  size_t errlen);
/* Read a file of key=value lines (-k); '#' starts a comment. */
int config_load_file(struct config *root, const char *file, char *err,
		     size_t errlen);

/*
 * A value, or NULL. Values may name others as %(path), expanded on read;
 * one that cannot expand (see config_check) reads as written. The pointer
 * stays valid until config_free, even when the key is read or set again
 * (config_unset frees what it removes).
 */
const char *config_get(const struct config *root, const char *path);
/*
 * Expand every value once: -1 with a one-line message naming the key when a
 * %(path) names no value, nests too deep or grows past 64 KiB.
 */
int config_check(const struct config *root, char *err, size_t errlen);
const char *config_get_default(const struct config *root, const char *path,
			       const char *def);
/*
 * Booleans: true/false, yes/no, on/off, 1/0. Returns def when unset, and
 * when not a boolean: bhyve checks its boolean keys at start-up
 * (bhyve_check_config, config_check_bool), devices their own when they
 * parse their node.
 */
bool config_get_bool(const struct config *root, const char *path, bool def);
/* -1 with "invalid value 'V' for boolean PATH" when set and not a boolean. */
int config_check_bool(const struct config *root, const char *path, char *err,
		      size_t errlen);
int config_parse_bool(const char *s, bool *out);
/* Remove a value or a whole subtree; 0 even when it was not there. */
void config_unset(struct config *root, const char *path);

/* A node (subtree) by path, or NULL; "" is the root itself. */
struct config *config_node(struct config *root, const char *path);
/* The child node, creating it. */
struct config *config_node_make(struct config *root, const char *path);
const char *config_node_name(const struct config *node);
/* Children in insertion order; stop early when fn returns non-zero. */
int config_foreach(const struct config *node,
		   int (*fn)(const struct config *child, void *arg), void *arg);
bool config_is_leaf(const struct config *node);
const char *config_leaf_value(const struct config *node);

/* Print the tree as key=value lines, as -k reads them. */
void config_dump(const struct config *root, FILE *f);

#endif
