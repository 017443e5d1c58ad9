/*
 * Pipe: connected pairs of ends carrying framed messages over a backend byte
 * channel.
 *
 * Framing: every message is a 4-byte little-endian length followed by that
 * many bytes (MPROC_MESSAGE_MAX is 2^30, so 32 bits hold every legal
 * length). Typed values are the codec's encoding in the same frame; raw bytes
 * are framed as they are, so a typed value received with recv_bytes gives
 * its encoding, and raw bytes received with recv are decoded (and are
 * MPROC_EBADMSG when they are not a valid encoding).
 *
 * Receiving reads ahead into a per-end buffer: a burst of small messages
 * costs one read, and a message that arrived only in part (a timeout, a
 * buffer too small, a poll) stays buffered for the next call, so nothing is
 * lost or half-read. A message too large for the read-ahead buffer is read
 * into its own allocation.
 *
 * Large messages avoid copies: a frame goes out as one gather write (header
 * and payload, no copy), and recv_bytes into a buffer big enough, or
 * recv_bytes_alloc, reads the rest of a large message straight into the
 * destination after taking what the read-ahead holds. If such a read stops
 * part-way (timeout, error), the part received is put back into the
 * read-ahead buffer or an allocation of its own, as if it had been read
 * ahead. After a large message the next read-ahead is kept short, since
 * the next message is likely large too and whatever the read-ahead takes
 * of it is copied once more.
 *
 * Map: the end; helpers; receive core; public calls; export/import and the
 * wait hook.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define HDR 4
/* Read-ahead buffer; also the largest frame sent from the send buffer. */
#define RBUF_CAP ((size_t)64 * 1024)
/* Messages from this size on are read straight into their destination. */
#define DIRECT_MIN ((size_t)16 * 1024)
/* The read-ahead after a large message. */
#define RA_SHORT ((size_t)4 * 1024)

struct mproc_conn {
    mproc__handle h;
    bool readable;
    bool writable;
    bool closed;
    bool eof;    /* the channel reported end-of-file */
    bool broken; /* a frame header was impossible: the stream is lost */
    /* read-ahead: bytes rbuf[rpos..rlen) are received, not yet consumed */
    uint8_t *rbuf;
    size_t rpos;
    size_t rlen;
    /* a message larger than the read-ahead buffer, being received */
    uint8_t *big;
    size_t big_len;
    size_t big_have;
    /* send buffer for small frames (header and payload in one write) */
    uint8_t *wbuf;
    /* the last message received was large: read ahead little */
    bool ra_short;
};

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int conn_new(mproc_conn **out, mproc__handle h, bool readable,
                    bool writable)
{
    mproc_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return MPROC_ENOMEM;
    c->h = h;
    c->readable = readable;
    c->writable = writable;
    *out = c;
    return 0;
}

static void conn_release(mproc_conn *c)
{
    mproc__os_handle_close(c->h);
    c->h = MPROC__BADHANDLE;
    free(c->rbuf);
    free(c->big);
    free(c->wbuf);
    c->rbuf = c->big = c->wbuf = NULL;
    c->rpos = c->rlen = c->big_len = c->big_have = 0;
    c->closed = true;
}

/* ---------------------------------------------------------------------------
 * Receive core
 */

/* Waits (until `deadline`) for the channel to be readable. */
static int wait_readable(mproc_conn *c, int64_t deadline)
{
    int rc;
    if (deadline < 0)
        return 0; /* a blocking read does the waiting */
    rc = mproc__os_chan_poll(c->h, mproc__remaining(deadline));
    if (rc < 0)
        return rc;
    return rc == 0 ? MPROC_ETIMEDOUT : 0;
}

/* One read into dst; MPROC_EEOF at end-of-file. */
static int read_some(mproc_conn *c, uint8_t *dst, size_t n, int64_t deadline,
                     size_t *got)
{
    int64_t r;
    int rc = wait_readable(c, deadline);
    if (rc < 0)
        return rc;
    r = mproc__os_chan_read(c->h, dst, n);
    if (r < 0)
        return (int)r;
    if (r == 0) {
        c->eof = true;
        return MPROC_EEOF;
    }
    *got = (size_t)r;
    return 0;
}

/* Makes one whole message available at *msg / *len without consuming it.
 * A partial message is kept across a timeout. An end-of-file in the middle
 * of a message (the sender died while sending) drops the fragment.
 *
 * Returns 1 instead, with *len set and nothing read past the header, for a
 * message not yet complete of DIRECT_MIN to direct_cap bytes: the caller
 * takes the part received (take_prefix) and reads the rest itself
 * (read_rest). direct_cap 0: never. */
static int fill_message(mproc_conn *c, int64_t deadline, size_t direct_cap,
                        const uint8_t **msg, size_t *len)
{
    for (;;) {
        size_t avail = c->rlen - c->rpos;
        size_t got = 0;
        size_t want;
        int rc;
        if (c->broken)
            return MPROC_EBADMSG;
        if (c->big != NULL) {
            if (c->big_have == c->big_len) {
                *msg = c->big;
                *len = c->big_len;
                return 0;
            }
            if (c->eof)
                goto eof;
            if (c->big_len >= DIRECT_MIN && c->big_len <= direct_cap) {
                *len = c->big_len;
                return 1;
            }
            rc = read_some(c, c->big + c->big_have, c->big_len - c->big_have,
                           deadline, &got);
            if (rc == MPROC_EEOF)
                goto eof;
            if (rc < 0)
                return rc;
            c->big_have += got;
            continue;
        }
        if (avail >= HDR) {
            size_t l = get_le32(c->rbuf + c->rpos);
            if (l > MPROC_MESSAGE_MAX) {
                /* Not one of ours: the rest of the stream cannot be framed. */
                c->broken = true;
                return MPROC_EBADMSG;
            }
            if (avail - HDR >= l) {
                *msg = c->rbuf + c->rpos + HDR;
                *len = l;
                return 0;
            }
            if (c->eof)
                goto eof;
            if (l >= DIRECT_MIN && l <= direct_cap) {
                *len = l;
                return 1;
            }
            if (HDR + l > RBUF_CAP) {
                c->big = malloc(l);
                if (c->big == NULL)
                    return MPROC_ENOMEM;
                c->big_len = l;
                c->big_have = avail - HDR;
                memcpy(c->big, c->rbuf + c->rpos + HDR, c->big_have);
                c->rpos = c->rlen = 0;
                continue;
            }
        }
        if (c->eof)
            goto eof;
        if (c->rbuf == NULL) {
            c->rbuf = malloc(RBUF_CAP);
            if (c->rbuf == NULL)
                return MPROC_ENOMEM;
        }
        if (c->rpos > 0) {
            memmove(c->rbuf, c->rbuf + c->rpos, avail);
            c->rpos = 0;
            c->rlen = avail;
        }
        /* Before a header is known, after a large message: a short read,
         * so that little of a large message goes through this buffer. */
        want = RBUF_CAP - c->rlen;
        if (avail < HDR && c->ra_short && want > RA_SHORT)
            want = RA_SHORT;
        rc = read_some(c, c->rbuf + c->rlen, want, deadline, &got);
        if (rc == MPROC_EEOF)
            goto eof;
        if (rc < 0)
            return rc;
        c->rlen += got;
    }
eof:
    free(c->big);
    c->big = NULL;
    c->big_len = c->big_have = 0;
    c->rpos = c->rlen = 0;
    return MPROC_EEOF;
}

/* Drops the message fill_message returned. */
static void consume(mproc_conn *c, size_t len)
{
    c->ra_short = len >= DIRECT_MIN;
    if (c->big != NULL) {
        free(c->big);
        c->big = NULL;
        c->big_len = c->big_have = 0;
        return;
    }
    c->rpos += HDR + len;
    if (c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
}

/* After fill_message returned 1: the part of the message received so far,
 * moved to dst (or, own_big, c->big itself handed over as *dst), and the
 * message dropped from the end. Returns the count moved. */
static size_t take_prefix(mproc_conn *c, uint8_t **dst, bool own_big)
{
    size_t have;
    if (c->big != NULL) {
        have = c->big_have;
        if (own_big) {
            *dst = c->big;
        } else {
            memcpy(*dst, c->big, have);
            free(c->big);
        }
        c->big = NULL;
        c->big_len = c->big_have = 0;
        return have;
    }
    have = c->rlen - c->rpos - HDR;
    memcpy(*dst, c->rbuf + c->rpos + HDR, have);
    /* fill_message returns 1 only with everything buffered belonging to
     * this message. */
    c->rpos = c->rlen = 0;
    return have;
}

/* Reads bytes [have, len) of a message straight into dst. If it stops
 * part-way, the part received is kept in the end as if read ahead (dst
 * becomes c->big when dst_owned, else it is copied), so that a timeout
 * never loses or tears the message; end-of-file drops it. */
static int read_rest(mproc_conn *c, uint8_t *dst, bool dst_owned, size_t len,
                     size_t have, int64_t deadline)
{
    int rc = 0;
    while (have < len) {
        size_t got = 0;
        rc = read_some(c, dst + have, len - have, deadline, &got);
        if (rc < 0)
            break;
        have += got;
    }
    if (rc == 0) {
        c->ra_short = true;
        return 0;
    }
    if (rc == MPROC_EEOF) {
        if (dst_owned)
            free(dst);
        return rc;
    }
    if (dst_owned) {
        c->big = dst;
    } else if (c->rbuf != NULL && HDR + have <= RBUF_CAP) {
        put_le32(c->rbuf, (uint32_t)len);
        memcpy(c->rbuf + HDR, dst, have);
        c->rpos = 0;
        c->rlen = HDR + have;
        return rc;
    } else {
        c->big = malloc(len);
        if (c->big == NULL) {
            /* Nowhere to keep the part received: the stream cannot be
             * framed any more. */
            c->broken = true;
            return MPROC_ENOMEM;
        }
        memcpy(c->big, dst, have);
    }
    c->big_len = len;
    c->big_have = have;
    return rc;
}

static int check_recv(mproc_conn *c, int timeout_ms)
{
    if (c == NULL)
        return MPROC_EINVAL;
    if (c->closed)
        return MPROC_ECLOSED;
    if (!c->readable)
        return MPROC_EDIRECTION;
    MPROC__CHECK_TIMEOUT(timeout_ms);
    return 0;
}

static int check_send(mproc_conn *c)
{
    if (c == NULL)
        return MPROC_EINVAL;
    if (c->closed)
        return MPROC_ECLOSED;
    if (!c->writable)
        return MPROC_EDIRECTION;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Public calls
 */

int mproc_pipe(mproc_conn **a, mproc_conn **b, bool duplex)
{
    mproc__handle h[2];
    int rc;
    if (a == NULL || b == NULL)
        return MPROC_EINVAL;
    *a = *b = NULL;
    rc = mproc__os_chan_pair(h, duplex);
    if (rc < 0)
        return rc;
    rc = conn_new(a, h[0], true, duplex);
    if (rc == 0)
        rc = conn_new(b, h[1], duplex, true);
    if (rc < 0) {
        free(*a);
        *a = NULL;
        mproc__os_handle_close(h[0]);
        mproc__os_handle_close(h[1]);
    }
    return rc;
}

/* Sends one frame. A small one is copied together with its header into the
 * send buffer and goes as one write (cheaper than a gather write for a few
 * bytes); a large one goes as one gather write, without a copy. */
static int send_frame(mproc_conn *c, const void *buf, size_t len)
{
    uint8_t hdr[HDR];
    if (len > MPROC_MESSAGE_MAX)
        return MPROC_EMSGSIZE;
    if (HDR + len <= RBUF_CAP) {
        if (c->wbuf == NULL) {
            c->wbuf = malloc(RBUF_CAP);
            if (c->wbuf == NULL)
                return MPROC_ENOMEM;
        }
        put_le32(c->wbuf, (uint32_t)len);
        if (len > 0)
            memcpy(c->wbuf + HDR, buf, len);
        return mproc__os_chan_write(c->h, c->wbuf, HDR + len);
    }
    put_le32(hdr, (uint32_t)len);
    return mproc__os_chan_writev(c->h, hdr, HDR, buf, len);
}

int mproc_conn_send(mproc_conn *c, const mproc_value *v)
{
    mproc__buf b = {NULL, 0, 0};
    int rc = check_send(c);
    if (rc < 0)
        return rc;
    if (v == NULL)
        return MPROC_EINVAL;
    /* Room for the header first, so that the frame goes in one write. */
    rc = mproc__buf_reserve(&b, HDR);
    if (rc == 0) {
        b.n = HDR;
        rc = mproc__encode(v, &b, NULL);
    }
    if (rc == 0) {
        size_t len = b.n - HDR;
        if (len > MPROC_MESSAGE_MAX) {
            rc = MPROC_EMSGSIZE;
        } else {
            put_le32(b.p, (uint32_t)len);
            rc = mproc__os_chan_write(c->h, b.p, b.n);
        }
    }
    mproc__buf_free(&b);
    return rc;
}

int mproc_conn_send_bytes(mproc_conn *c, const void *buf, size_t len)
{
    int rc = check_send(c);
    if (rc < 0)
        return rc;
    if (len > MPROC_MESSAGE_MAX)
        return MPROC_EMSGSIZE;
    if (buf == NULL && len > 0)
        return MPROC_EINVAL;
    return send_frame(c, buf, len);
}

int mproc_conn_recv(mproc_conn *c, mproc_value **out, int timeout_ms)
{
    const uint8_t *msg;
    size_t len;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = NULL;
    rc = fill_message(c, mproc__deadline(timeout_ms), 0, &msg, &len);
    if (rc < 0)
        return rc;
    rc = mproc__decode(msg, len, false, out);
    /* Consumed whether or not it decodes: a malformed message must not
     * block the ones behind it. */
    consume(c, len);
    if (rc < 0) {
        *out = NULL;
        return rc == MPROC_ENOMEM ? rc : MPROC_EBADMSG;
    }
    return 0;
}

int mproc_conn_recv_bytes(mproc_conn *c, void *buf, size_t cap, size_t *len,
                          int timeout_ms)
{
    const uint8_t *msg;
    size_t n;
    int64_t deadline;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    if (len == NULL || (buf == NULL && cap > 0))
        return MPROC_EINVAL;
    deadline = mproc__deadline(timeout_ms);
    rc = fill_message(c, deadline, cap, &msg, &n);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        uint8_t *dst = buf;
        size_t have = take_prefix(c, &dst, false);
        rc = read_rest(c, dst, false, n, have, deadline);
        if (rc == 0)
            *len = n;
        return rc;
    }
    *len = n;
    if (n > cap)
        return MPROC_ETOOSMALL; /* kept for the next receive */
    if (n > 0)
        memcpy(buf, msg, n);
    consume(c, n);
    return 0;
}

int mproc_conn_recv_bytes_alloc(mproc_conn *c, void **buf, size_t *len,
                                int timeout_ms)
{
    const uint8_t *msg;
    size_t n;
    uint8_t *p;
    int64_t deadline;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    if (buf == NULL || len == NULL)
        return MPROC_EINVAL;
    *buf = NULL;
    *len = 0;
    deadline = mproc__deadline(timeout_ms);
    rc = fill_message(c, deadline, MPROC_MESSAGE_MAX, &msg, &n);
    if (rc < 0)
        return rc;
    if (rc == 1) {
        /* One allocation of the exact size, read into directly (or the one
         * a previous receive began, taken over). */
        size_t have;
        p = NULL;
        if (c->big == NULL) {
            p = malloc(n);
            if (p == NULL)
                return MPROC_ENOMEM;
        }
        have = take_prefix(c, &p, true);
        rc = read_rest(c, p, true, n, have, deadline);
        if (rc < 0)
            return rc;
    } else if (c->big != NULL) {
        /* Hand over the allocation instead of copying a large message. */
        p = c->big;
        c->big = NULL;
        c->big_len = c->big_have = 0;
        c->ra_short = true;
    } else {
        p = malloc(n > 0 ? n : 1);
        if (p == NULL)
            return MPROC_ENOMEM;
        if (n > 0)
            memcpy(p, msg, n);
        consume(c, n);
    }
    *buf = p;
    *len = n;
    return 0;
}

int mproc_conn_poll(mproc_conn *c, int timeout_ms)
{
    const uint8_t *msg;
    size_t len;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    rc = fill_message(c, mproc__deadline(timeout_ms), 0, &msg, &len);
    if (rc == 0 || rc == MPROC_EEOF || rc == MPROC_EBADMSG)
        return 1; /* a receive would not block */
    if (rc == MPROC_ETIMEDOUT)
        return 0;
    return rc;
}

int mproc_conn_close(mproc_conn *c)
{
    if (c == NULL)
        return MPROC_EINVAL;
    if (c->closed)
        return MPROC_ECLOSED;
    conn_release(c);
    return 0;
}

mproc_conn *mproc_conn_destroy(mproc_conn *c)
{
    if (c == NULL)
        return NULL;
    if (!c->closed)
        conn_release(c);
    free(c);
    return NULL;
}

/* ---------------------------------------------------------------------------
 * Export / import and the wait hook
 *
 * Blob: one flags byte (1 readable, 2 writable), then any bytes read ahead
 * but not yet consumed, so that passing an end to a child loses nothing. An
 * end holding more read-ahead than the blob carries (or a partly received
 * large message) cannot be passed: MPROC_ESTATE.
 */

int mproc__conn_export(mproc_conn *c, mproc__export *ex)
{
    size_t avail;
    if (c == NULL || ex == NULL)
        return MPROC_EINVAL;
    if (c->closed)
        return MPROC_ECLOSED;
    avail = c->rlen - c->rpos;
    if (c->big != NULL || avail > MPROC__EXPORT_MAX_BLOB - 1)
        return MPROC_ESTATE;
    ex->h[0] = c->h;
    ex->nh = 1;
    ex->blob[0] = (uint8_t)((c->readable ? 1 : 0) | (c->writable ? 2 : 0) |
                            (c->eof ? 4 : 0));
    if (avail > 0)
        memcpy(ex->blob + 1, c->rbuf + c->rpos, avail);
    ex->nblob = (uint32_t)(1 + avail);
    return 0;
}

int mproc__conn_import(const mproc__export *ex, mproc_conn **out)
{
    mproc_conn *c;
    size_t avail;
    int rc;
    if (ex == NULL || out == NULL)
        return MPROC_EINVAL;
    if (ex->nh != 1 || ex->nblob < 1 || ex->nblob > MPROC__EXPORT_MAX_BLOB ||
        (ex->blob[0] & ~7u) != 0 || (ex->blob[0] & 3u) == 0)
        return MPROC_EBADMSG;
    rc = conn_new(&c, ex->h[0], (ex->blob[0] & 1) != 0, (ex->blob[0] & 2) != 0);
    if (rc < 0)
        return rc;
    c->eof = (ex->blob[0] & 4) != 0;
    avail = ex->nblob - 1;
    if (avail > 0) {
        c->rbuf = malloc(RBUF_CAP);
        if (c->rbuf == NULL) {
            free(c);
            return MPROC_ENOMEM;
        }
        memcpy(c->rbuf, ex->blob + 1, avail);
        c->rlen = avail;
    }
    *out = c;
    return 0;
}

int mproc__conn_wait_handle(mproc_conn *c, mproc__handle *h, bool *ready_now)
{
    size_t avail;
    if (c == NULL || h == NULL || ready_now == NULL)
        return MPROC_EINVAL;
    if (c->closed)
        return MPROC_ECLOSED;
    if (!c->readable)
        return MPROC_EDIRECTION;
    *h = c->h;
    avail = c->rlen - c->rpos;
    *ready_now = c->eof || c->broken ||
                 (c->big != NULL && c->big_have == c->big_len) ||
                 (avail >= HDR && avail - HDR >= get_le32(c->rbuf + c->rpos));
    return 0;
}
