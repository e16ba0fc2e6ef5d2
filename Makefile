# samail — one GNU makefile, no configure step.
#
#   make            build/samail (optimised, warnings are errors)
#   make deps       install the Debian packages below that are missing (root)
#   make test       deps, then unit + integration tests under ASan+UBSan
#   make demo       deps, build, run the monthly job on the built-in defaults
#   make bench      the benchmarks, each printed next to its peer
#   make fuzz       build the fuzz targets and fuzz each for FUZZ_SECONDS
#   make install    PREFIX=/usr/local DESTDIR=

VERSION		= 0.1.0
PREFIX		?= /usr/local
BINDIR		?= $(PREFIX)/bin
DATADIR		?= $(PREFIX)/share/samail
MANDIR		?= $(PREFIX)/share/man
DOCDIR		?= $(PREFIX)/share/doc/samail
SYSTEMDDIR	?= $(PREFIX)/lib/systemd/system
SYSCONFDIR	?= /etc/samail

BUILD		?= build
CC		?= cc
PKG_CONFIG	?= pkg-config

# Every Debian package that the build, the tests, the benchmarks and the
# demo need: the one list.  `make deps` installs those that are missing.
DEB_PACKAGES = \
	build-essential pkg-config \
	libcurl4-openssl-dev libxml2-dev libsqlite3-dev libical-dev \
	libgmime-3.0-dev libinih-dev libcsv-dev libmicrohttpd-dev \
	libssl-dev libjansson-dev libidn2-dev \
	libcmocka-dev clang libclang-rt-14-dev \
	sqlite3 libxml2-utils curl openssl ca-certificates time \
	python3 python3-aiosmtpd python3-icalendar \
	postfix spamassassin chromium fonts-noto-cjk groff man-db

PKGS	= libcurl libxml-2.0 sqlite3 libical gmime-3.0 inih libmicrohttpd \
	  libcrypto jansson libidn2

WARN	= -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
	  -Wmissing-prototypes -Wpointer-arith -Wwrite-strings -Wvla \
	  -Wno-missing-field-initializers -Wno-format-truncation
OPT	?= -O2 -g
DEFS	= -D_GNU_SOURCE -DSAMAIL_VERSION='"$(VERSION)"' \
	  -DSAMAIL_DATADIR='"$(DATADIR)"' -DSAMAIL_SYSCONFDIR='"$(SYSCONFDIR)"'

ifdef SANITIZE
SANFLAGS = -fsanitize=$(SANITIZE) -fno-sanitize-recover=all \
	   -fno-omit-frame-pointer
HARDEN	 =
else
SANFLAGS =
HARDEN	 = -fstack-protector-strong -D_FORTIFY_SOURCE=2
endif

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lcsv -lpthread -lm

override CFLAGS := -std=c17 $(DEFS) $(WARN) $(HARDEN) $(SANFLAGS) -Ilib \
	$(PKG_CFLAGS) -MMD -MP $(OPT) $(CFLAGS)
override LDFLAGS := $(SANFLAGS) $(LDFLAGS)

LIB_SRC	= $(sort $(wildcard lib/*.c))
CMD_SRC	= $(sort $(wildcard cmd/*.c))
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
LIB_OBJ	= $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ	= $(CMD_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.SECONDARY:

.PHONY: all deps test check unit integration demo bench fuzz install \
	uninstall clean check-deps FORCE

all: $(BUILD)/samail

ifeq ($(V),1)
Q =
else
Q = @
endif

# The install paths compiled in (SAMAIL_DATADIR, SAMAIL_SYSCONFDIR): a
# stamp that changes with them, so `make install PREFIX=...` after a plain
# `make` rebuilds rather than install a binary looking elsewhere.
PATHS_STAMP = $(BUILD)/.paths
$(PATHS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(DATADIR) $(SYSCONFDIR)' | cmp -s - $@ || \
		echo '$(DATADIR) $(SYSCONFDIR)' > $@
FORCE:

$(BUILD)/%.o: %.c $(PATHS_STAMP)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libsamail.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/samail: $(CMD_OBJ) $(BUILD)/libsamail.a
	$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(BUILD)/libsamail.a $(PKG_LIBS)

$(BUILD)/tests/test_%: $(BUILD)/tests/unit/test_%.o $(BUILD)/libsamail.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/libsamail.a $(PKG_LIBS) \
		$(shell $(PKG_CONFIG) --libs cmocka)

# --- set-up ---------------------------------------------------------------

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		    grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: installing:$$missing"; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "deps: not root; run as root: apt-get install$$missing" >&2; exit 1; fi; \
	echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections; \
	echo "postfix postfix/mailname string localhost" | debconf-set-selections; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing

# --- tests ----------------------------------------------------------------

# `make test`: everything under ASan+UBSan with warnings as errors, in a
# build tree of its own so the optimised build/samail is left alone.
test: deps
	$(MAKE) BUILD=build/test SANITIZE=address,undefined OPT='-O1 -g' check

check: unit integration

unit: $(UNIT_BIN)
	@tests/run-unit.sh $(UNIT_BIN)

integration: $(BUILD)/samail
	@SAMAIL=$(abspath $(BUILD)/samail) tests/integration/run.sh

# --- demo, bench, fuzz ----------------------------------------------------

demo: deps
	$(MAKE) all
	@tests/demo.sh $(BUILD)/samail

bench: deps
	$(MAKE) all
	@SAMAIL=$(abspath $(BUILD)/samail) tests/bench/run.sh

FUZZ_SECONDS ?= 120
fuzz: deps
	@tests/fuzz/run.sh $(FUZZ_SECONDS)

# --- install --------------------------------------------------------------

install: $(BUILD)/samail
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/templates \
		$(DESTDIR)$(DATADIR)/feeds $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSTEMDDIR) \
		$(DESTDIR)$(DOCDIR)/examples
	install -m 755 $(BUILD)/samail $(DESTDIR)$(BINDIR)/samail
	cp -R templates/. $(DESTDIR)$(DATADIR)/templates/
	cp -R feeds/. $(DESTDIR)$(DATADIR)/feeds/
	# The man pages name the paths of this install, not /usr/local's.
	for m in 1/samail.1 5/samail.conf.5; do \
		sed -e 's|/usr/local/share/doc/samail|$(DOCDIR)|g' \
		    -e 's|/usr/local/share/samail|$(DATADIR)|g' \
		    -e 's|/usr/local/lib/systemd/system|$(SYSTEMDDIR)|g' \
		    -e 's|/usr/local/bin/samail|$(BINDIR)/samail|g' \
		    "docs/$${m#*/}" > $(DESTDIR)$(MANDIR)/man$$m && \
		chmod 644 $(DESTDIR)$(MANDIR)/man$$m || exit 1; \
	done
	# The units and the cron file name the binary where it was installed.
	for f in cron/*.service cron/*.timer cron/samail.cron; do \
		[ -f "$$f" ] || continue; \
		case $$f in *.cron) d=$(DESTDIR)$(DOCDIR)/examples ;; \
		*) d=$(DESTDIR)$(SYSTEMDDIR) ;; esac; \
		sed 's|/usr/local/bin/samail|$(BINDIR)/samail|g' "$$f" \
		    > "$$d/$${f##*/}" && chmod 644 "$$d/$${f##*/}" || exit 1; \
	done
	for f in docs/samail.conf.example; do \
		[ -f "$$f" ] && install -m 644 "$$f" $(DESTDIR)$(DOCDIR)/examples/; done; true
	for f in docs/*.md; do \
		[ -f "$$f" ] && install -m 644 "$$f" $(DESTDIR)$(DOCDIR)/; done; true

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/samail $(DESTDIR)$(MANDIR)/man1/samail.1 \
		$(DESTDIR)$(MANDIR)/man5/samail.conf.5
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)
	for f in cron/*.service cron/*.timer; do \
		rm -f $(DESTDIR)$(SYSTEMDDIR)/$$(basename $$f); done

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(UNIT_SRC:%.c=$(BUILD)/%.d)
