/* lib/text.c driven from stdin, for a differential test against Python's
 * strict UTF-8 decoder (tests/t_text.sh). Each input line is "MODE HEX":
 * MODE is t (sbuf_text), c (sbuf_text with TEXT_CONTROLS), j
 * (sbuf_json_str) or s (sbuf_text into a buffer of HEX's first byte's
 * size, to show a cut never splits a character); HEX the bytes. Each
 * output line is the result, hex-encoded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/text.h"

static void put_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", (unsigned char)s[i]);
	printf("\n");
}

int main(void)
{
	static char line[65536], in[32768], out[4 * 32768 + 16];
	struct sbuf b;

	while (fgets(line, sizeof(line), stdin)) {
		size_t n = 0, size = sizeof(out);
		char mode = line[0];
		unsigned v;

		for (const char *p = line + 2; sscanf(p, "%2x", &v) == 1 && n < sizeof(in) - 1; p += 2)
			in[n++] = (char)v;
		in[n] = '\0';
		if (mode == 's') {
			size = (unsigned char)in[0] % 16 + 1;
			memmove(in, in + 1, n);
		}
		sbuf_init(&b, out, size);
		if (mode == 'j')
			sbuf_json_str(&b, in);
		else
			sbuf_text(&b, in, mode == 'c' ? TEXT_CONTROLS : 0);
		put_hex(out, b.len);
	}
	return 0;
}
