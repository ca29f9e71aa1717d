/* Bytes from the host as text. A comm, an executable path, a cgroup, a pod
 * or rule name is a string of bytes: not always UTF-8, and free to hold
 * control characters. Everything that leaves reflexd as text (OTLP string
 * fields, JSON, a person's terminal) goes through these, so it is valid
 * UTF-8 and, for a terminal, holds no control character. The journal keeps
 * the raw bytes (docs/journal.md). */
#ifndef REFLEX_LIB_TEXT_H
#define REFLEX_LIB_TEXT_H

#include <stddef.h>
#include <stdio.h>

#include "lib/util.h"

enum text_flags {
	/* also escape control characters (C0, DEL, C1): for a terminal or
	 * a log line, where ESC could drive the reader's terminal */
	TEXT_CONTROLS = 1,
	/* the text goes inside a JSON string literal: escapes are written
	 * "\\xff", so that they decode to the four characters \xff */
	TEXT_IN_JSON = 2,
};

/* The length (1 to 4) of the well-formed UTF-8 sequence at s, or 0 when
 * s does not start one (a stray continuation byte, an overlong form, a
 * surrogate, past U+10FFFF, a cut sequence). s is NUL-terminated. */
size_t text_utf8_seq(const unsigned char *s);

/* Appends s to b as valid UTF-8: each byte that is not part of a
 * well-formed sequence becomes the four characters \xhh (lower-case hex,
 * as Python's "backslashreplace" and systemd write them); with
 * TEXT_CONTROLS so does each control character, but for \n, \t and \r
 * written as such. Valid text is copied as it is. When b is full
 * the text is cut between characters, never inside one. */
void sbuf_text(struct sbuf *b, const char *s, unsigned flags);

/* True when s is valid UTF-8 (and, with TEXT_CONTROLS, holds no control
 * character): sbuf_text would copy it unchanged. */
bool text_is_clean(const char *s, unsigned flags);

/* Prints one line for a person: fmt formatted, escaped as sbuf_text with
 * TEXT_CONTROLS, then a newline (a trailing newline in fmt is that one). */
void text_print(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
