# bhyve for Linux. One entry point: make, make check, make run, make bench.
#
#   make          build build/bin/{bhyve,bhyvectl,rawload} and the test guests
#   make check    unit tests (ASan+UBSan) and integration tests (kyua),
#                 nested under QEMU when there is no /dev/kvm
#   make run      boot the default guest with its console on the terminal
#   make bench    benchmarks (tests/bench), results for BENCHMARKS.md
#   make fuzz     build the fuzz targets (clang, libFuzzer) into build/fuzz;
#                 run one with e.g. build/fuzz/fuzz_virtio_blk -max_total_time=60
#   make fuzz-run run every fuzz target from its seeds for FUZZ_TIME seconds
#                 each (default 60; FUZZ_TARGETS=fuzz_machine for some);
#                 fails on any crash, leak or timeout (tests/fuzz/run.sh)

CC ?= gcc
BUILD ?= build
O := $(BUILD)/obj
A := $(BUILD)/asan

WARN := -Wall -Wextra -Werror -Wno-missing-field-initializers
# Each layer sees only the headers below it (docs/ARCHITECTURE.md): the vmm
# layer its own, the runtime (src/hv/core) the vmm layer's, devices the
# runtime's, the front ends everything. ci/check-includes.sh checks the same
# by reading the sources.
INC_KMOD := -Isrc/kmod
INC_CORE := $(INC_KMOD) -Isrc/hv/core
INC_DEV := $(INC_CORE) -Isrc/devices
INC = $(INC_DEV) -Isrc/hv
BASE = -std=gnu11 $(WARN) -g -D_GNU_SOURCE $(INC) -MMD -MP
CFLAGS = $(BASE) -O2
SANFLAGS = $(BASE) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
LDLIBS := -lpthread -lseccomp -lext2fs -lcom_err -lblkid -lmd -lslirp

KMOD_SRC := $(wildcard src/kmod/*.c)
HV_MAINS := src/hv/bhyverun.c src/hv/bhyvectl.c src/hv/rawload.c \
	src/hv/grub_bhyve.c
CORE_SRC := $(wildcard src/hv/core/*.c)
HV_SRC := $(CORE_SRC) $(filter-out $(HV_MAINS),$(wildcard src/hv/*.c))
DEV_SRC := $(wildcard src/devices/*.c)
LIB_SRC := $(KMOD_SRC) $(HV_SRC) $(DEV_SRC)

LIB_OBJ := $(LIB_SRC:%.c=$(O)/%.o)
KMOD_OBJ := $(KMOD_SRC:%.c=$(O)/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=$(A)/%.o)

BINS := $(BUILD)/bin/bhyve $(BUILD)/bin/bhyvectl $(BUILD)/bin/rawload \
	$(BUILD)/bin/kvmfloor $(BUILD)/bin/vmrun.sh $(if $(wildcard src/hv/grub_bhyve.c),$(BUILD)/bin/grub-bhyve)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/unit/%)

# Fuzz targets (tests/fuzz/fuzz_*.c): clang with libFuzzer, ASan and UBSan,
# linked with the library and the target's fakes (tests/fuzz/fake_*.c stand
# in for the library files of the same name, e.g. block_if.c).
FUZZ_CC ?= clang
F := $(BUILD)/fuzz
FUZZFLAGS = $(BASE) -Itests/fuzz -O1 -fno-omit-frame-pointer \
	-Wno-gnu-variable-sized-type-not-at-end \
	-fsanitize=fuzzer-no-link,address,undefined
FUZZ_FAKES := $(wildcard tests/fuzz/fake_*.c)
# Rigs (tests/fuzz/rig_*.c): a machine several targets share.
FUZZ_RIGS := $(wildcard tests/fuzz/rig_*.c)
FUZZ_LIB := $(filter-out $(patsubst tests/fuzz/fake_%.c,src/devices/%.c,$(FUZZ_FAKES)),$(LIB_SRC))
FUZZ_OBJ := $(FUZZ_LIB:%.c=$(F)/obj/%.o) $(FUZZ_FAKES:%.c=$(F)/obj/%.o) \
	$(FUZZ_RIGS:%.c=$(F)/obj/%.o)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(F)/%,$(wildcard tests/fuzz/fuzz_*.c))

# Per-layer include paths, for every build flavour (plain, ASan, fuzz).
$(O)/src/kmod/%.o $(A)/src/kmod/%.o $(F)/obj/src/kmod/%.o: INC = $(INC_KMOD)
$(O)/src/hv/core/%.o $(A)/src/hv/core/%.o $(F)/obj/src/hv/core/%.o: INC = $(INC_CORE)
$(O)/src/devices/%.o $(A)/src/devices/%.o $(F)/obj/src/devices/%.o: INC = $(INC_DEV)

.DEFAULT_GOAL := all
include fixtures/guests/guests.mk

.PHONY: all check unit integration run bench fuzz fuzz-run clean includes optionkeys
all: includes optionkeys $(BINS) guests $(UNIT_BINS)

# Every #include goes down the layers (docs/ARCHITECTURE.md).
includes:
	@ci/check-includes.sh

# Every config key a bhyve option sets is read by some code.
optionkeys:
	@ci/check-option-keys.sh

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(A)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -c $< -o $@

# bhyve leaves out grub-bhyve's shell, loaders and image readers and the
# libraries only they use (libext2fs, libblkid): each library mapped is
# resident memory in every VM's bhyve process (BENCHMARKS.md, VMM memory).
LOADER_OBJ := $(filter $(O)/src/hv/grub_% $(O)/src/hv/linux_boot.o \
	$(O)/src/hv/multiboot.o $(O)/src/hv/load_file.o,$(LIB_OBJ))
BHYVE_OBJ := $(filter-out $(LOADER_OBJ),$(LIB_OBJ))
$(BUILD)/bin/bhyve: $(BHYVE_OBJ) $(O)/src/hv/bhyverun.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wl,--as-needed $^ -o $@ $(LDLIBS)

$(BUILD)/bin/bhyvectl: $(KMOD_OBJ) $(O)/src/hv/bhyvectl.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wl,--as-needed $^ -o $@ $(LDLIBS)

$(BUILD)/bin/rawload: $(KMOD_OBJ) $(O)/src/hv/rawload.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wl,--as-needed $^ -o $@ $(LDLIBS)

# grub-bhyve: the loader shell; links the boot protocol code from src/hv.
$(BUILD)/bin/grub-bhyve: $(LIB_OBJ) $(O)/src/hv/grub_bhyve.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bin/vmrun.sh: src/hv/vmrun.sh
	@mkdir -p $(dir $@)
	install -m 755 $< $@

# The raw KVM floor for the port-I/O benchmark: no bhyve, just KVM_RUN.
$(BUILD)/bin/kvmfloor: tests/bench/kvmfloor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@

$(BUILD)/tests/unit/%: tests/unit/%.c $(ASAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(filter %.c %.o,$^) -o $@ -lcmocka $(LDLIBS)

$(F)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZFLAGS) -c $< -o $@

$(F)/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(filter-out -MMD -MP,$(FUZZFLAGS)) -fsanitize=fuzzer \
		$(filter %.c %.o,$^) -o $@ $(LDLIBS)

fuzz:
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz: $(FUZZ_CC) is \
	missing: apt-get install clang (libFuzzer comes with it)" >&2; exit 1; }
	@$(MAKE) --no-print-directory $(FUZZ_BINS)

FUZZ_TIME ?= 60
fuzz-run: fuzz
	FUZZ_TIME=$(FUZZ_TIME) FUZZ_BIN=$(F) tests/fuzz/run.sh $(FUZZ_TARGETS)

# Each entry point first installs what is missing (ci/deps.sh says what).
check:
	@ci/deps.sh
	@$(MAKE) --no-print-directory all
	@ci/check.sh

unit:
	@ci/deps.sh
	@$(MAKE) --no-print-directory $(UNIT_BINS)
	@ci/check.sh --unit-only

run:
	@ci/deps.sh
	@$(MAKE) --no-print-directory all
	@ci/run-default-guest.sh

bench:
	@ci/deps.sh
	@$(MAKE) --no-print-directory all
	@tests/bench/run.sh
	@tests/bench/hvtest_overhead.py

clean:
	rm -rf $(BUILD)

# Keep objects between test links (they are not intermediates).
.SECONDARY: $(ASAN_OBJ) $(LIB_OBJ) $(FUZZ_OBJ)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
