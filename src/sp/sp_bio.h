/*
 * sp_bio.h - an OpenSSL BIO over a socket that never raises SIGPIPE.
 * OpenSSL's own socket BIO writes with write(2), which kills a process
 * that has not ignored SIGPIPE when the peer has gone; a library (libhopper)
 * or an embedded broker cannot ask its host program to ignore the signal.
 * This one sends with MSG_NOSIGNAL where it exists (and relies on
 * SO_NOSIGPIPE, set by sp_socket_nosigpipe, elsewhere).
 */
#ifndef HP_SP_SP_BIO_H
#define HP_SP_SP_BIO_H

#include <openssl/bio.h>

/* A BIO reading and writing fd, which stays the caller's to close; NULL
 * without memory. Thread-safe to call. */
BIO *sp_socket_bio(int fd);

/* Sets SO_NOSIGPIPE on fd where the platform has it (macOS); a no-op on
 * Linux, where every send passes MSG_NOSIGNAL instead. */
void sp_socket_nosigpipe(int fd);

/* send(2) without SIGPIPE. */
long sp_send(int fd, const void *p, unsigned long len);

#endif
