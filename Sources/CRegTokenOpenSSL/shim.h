// The OpenSSL 3 libcrypto API regtoken uses, pinned to 3.0: a call deprecated in 3.0 fails to
// compile instead of warning. The one measured exception (HMAC pad states through the low-level
// SHA-256 API) lives in CRegTokenFastPath, which says why.
//
// Function-like macros and variadic functions are not visible from Swift: the few regtoken needs
// are wrapped below as static inline functions, prefixed CRegTokenOpenSSL_ because C names share
// one namespace across the whole build graph.
#ifndef C_REGTOKEN_OPENSSL_SHIM_H
#define C_REGTOKEN_OPENSSL_SHIM_H

#ifndef OPENSSL_API_COMPAT
#define OPENSSL_API_COMPAT 30000
#endif
#ifndef OPENSSL_NO_DEPRECATED
#define OPENSSL_NO_DEPRECATED
#endif

#include <string.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/ec.h>

/// BIO_get_mem_data is a macro over BIO_ctrl.
static inline long CRegTokenOpenSSL_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

/// EVP_PKEY_CTX_set_group_name is a function in 3.0, but keep key generation in one place.
static inline EVP_PKEY *CRegTokenOpenSSL_generate_p256(void) {
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL) return NULL;
    if (EVP_PKEY_keygen_init(ctx) <= 0 ||
        EVP_PKEY_CTX_set_group_name(ctx, "P-256") <= 0 ||
        EVP_PKEY_generate(ctx, &pkey) <= 0) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/// A PEM passphrase callback that never prompts: an encrypted key is refused, not asked for on a tty.
static inline int CRegTokenOpenSSL_no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

static inline EVP_PKEY *CRegTokenOpenSSL_PEM_read_private_key(BIO *bio) {
    return PEM_read_bio_PrivateKey(bio, NULL, CRegTokenOpenSSL_no_passphrase, NULL);
}

static inline EVP_PKEY *CRegTokenOpenSSL_PEM_read_public_key(BIO *bio) {
    return PEM_read_bio_PUBKEY(bio, NULL, CRegTokenOpenSSL_no_passphrase, NULL);
}

/// 1 if the key is an EC key on P-256 (prime256v1), 0 otherwise.
static inline int CRegTokenOpenSSL_is_p256(const EVP_PKEY *pkey) {
    char name[64];
    size_t len = 0;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) return 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &len) != 1) return 0;
    return strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0;
}

/// 1 if the key holds a private scalar.
static inline int CRegTokenOpenSSL_has_private(const EVP_PKEY *pkey) {
    BIGNUM *d = NULL;
    int ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d);
    BN_clear_free(d);
    return ok == 1;
}

/// 1 if the key's public point is on the curve and, when it holds a private scalar, equals
/// that scalar times the generator. A PKCS#8 or SEC1 file carries both parts and OpenSSL loads
/// them as they are: a damaged file could otherwise sign with one and publish the other.
static inline int CRegTokenOpenSSL_check_key(EVP_PKEY *pkey, int has_private) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (ctx == NULL) return 0;
    int ok = has_private ? EVP_PKEY_pairwise_check(ctx) : EVP_PKEY_public_check(ctx);
    EVP_PKEY_CTX_free(ctx);
    return ok == 1;
}

#endif
