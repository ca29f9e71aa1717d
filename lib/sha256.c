/* SHA-256 through libcrypto's EVP, for the rule-file hash in every
 * decision record: the same digest `sha256sum rules/x.lua` prints. */
#include <errno.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "lib/util.h"

int sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
		return -EIO;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}
