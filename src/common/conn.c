/*
 * Pipe: connected pairs of ends carrying framed messages over a backend byte
 * channel.
 *
 * Framing: every message is an 8-byte header, its little-endian 32-bit
 * length (MPROC_MESSAGE_MAX is 2^30, so 32 bits hold every legal length)
 * and a check word computed from the length, followed by that many bytes.
 * The check word tells a header from bytes that only happen to stand where
 * one should (a stream torn by a process that ended in the middle of a
 * large message, or a hostile peer). Typed values are the codec's encoding
 * in the same frame; raw bytes are framed as they are, so a typed value
 * received with recv_bytes gives its encoding, and raw bytes received with
 * recv are decoded (and are MPROC_EBADMSG when they are not a valid
 * encoding). A length past MPROC_MESSAGE_MAX or a wrong check word is no
 * frame of ours: the stream cannot be framed any more, and the end is
 * closed at once (MPROC_EFRAMING from then on; the peer's sends fail with
 * MPROC_EPIPE instead of filling the channel).
 *
 * The channel is shared: an end passes from process to process (a child
 * receives it, and its parent may use it again once the child is done), so
 * every byte a process takes out of the channel must belong to a message it
 * returns. Hence (C13):
 *
 * - Nothing is read ahead. Receiving peeks (backend chan_peek: the bytes
 *   stay in the channel) into a per-end cache of up to 64 KiB, finds the
 *   frames there, and consumes exactly the frame it returns, header and
 *   payload in one read (back into the cache, then copied: one read takes
 *   the frame out at once). A burst of small messages costs one peek, then
 *   one read per message. poll only peeks. The cache is only a copy of the
 *   head of the channel: passing the end to a child drops it, and a frame
 *   whose header does not read back as it was peeked closes the end.
 * - A frame of up to 64 KiB, header included, is consumed only once all of
 *   it is in the channel (it always fits: a socket pair or pipe holds more),
 *   so a receiver that times out, ends or is killed leaves it whole. If one
 *   began to arrive and stopped (its sender preempted in the middle of the
 *   write, or dead), the receiver yields a few times, then takes it like a
 *   large one.
 * - A larger frame cannot be all in the channel (its sender blocks until
 *   the receiver reads), so it is consumed as it arrives: header and payload
 *   straight into the destination (the caller's buffer, or an allocation of
 *   the exact size). If a receive stops part-way (a timeout), what it took
 *   is kept in the end (the frame "in progress": `part` bytes, the header in
 *   `hdr`, the payload so far in `big`) and the next receive goes on from
 *   there, so a timeout never loses or tears a message; such an end cannot
 *   be passed to a child (MPROC_ESTATE) until that message is received.
 *   End-of-file in the middle of a frame (the sender died while sending)
 *   drops it and reads as MPROC_EEOF.
 *
 * Sending: a small frame is copied together with its header into a send
 * buffer and goes as one write; a large one as one gather write (header and
 * payload, no copy).
 *
 * Map: the end; helpers; peeking (the cache); the frame in progress; public
 * calls; export/import and the wait hook.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define HDR 8
/* The peek cache; also the largest frame (header included) consumed only
 * whole, and the largest frame sent from the send buffer. */
#define RBUF_CAP ((size_t)64 * 1024)
/* How many times a receive peeks again, yielding in between, for the rest
 * of a small frame that began to arrive, before it takes the frame in
 * pieces. */
#define SPIN_MAX 64

struct mproc_conn {
    mproc__handle h;
    bool readable;
    bool writable;
    bool closed;
    bool eof;     /* end-of-file, and nothing left in the channel */
    bool framing; /* broken framing closed the channel: MPROC_EFRAMING */
    bool rec;     /* a record channel (see "Records" above) */
    /* the cache: pk[pk_pos..pk_len) are the first bytes in the channel,
     * peeked, not consumed */
    uint8_t *pk;
    size_t pk_pos;
    size_t pk_len;
    /* the frame in progress: `part` bytes of it consumed, header included;
     * the header in hdr, the payload received so far in big (big_len bytes,
     * allocated once the length is known) */
    size_t part;
    uint8_t hdr[HDR];
    uint8_t *big;
    size_t big_len;
    /* send buffer for small frames (header and payload in one write) */
    uint8_t *wbuf;
    /* the last message received was large: peek little (the next is likely
     * large too, and whatever a peek copies of it is copied once more) */
    bool ra_short;
    /* descriptors that came with the frame being taken (POSIX), owned
     * here until the frame is decoded (C16) */
    mproc__handle rx[MPROC__PASS_MAX];
    size_t nrx;
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

/* The header's check word: the length mixed with a constant (a header of
 * zeros is no header). */
static uint32_t hdr_check(uint32_t len)
{
    return (len * 0x9E3779B1u) ^ 0x6D70726Fu;
}

static void put_hdr(uint8_t *p, size_t len)
{
    put_le32(p, (uint32_t)len);
    put_le32(p + 4, hdr_check((uint32_t)len));
}

/* The length a header announces, or -1 for no header of ours. */
static int64_t hdr_len(const uint8_t *p)
{
    uint32_t len = get_le32(p);
    if (len > MPROC_MESSAGE_MAX || get_le32(p + 4) != hdr_check(len))
        return -1;
    return (int64_t)len;
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

/* Closes the descriptors that came with a frame that does not take them
 * (or that failed): none of them stays in this process. */
static void rx_close(mproc_conn *c)
{
    size_t i;
    for (i = 0; i < c->nrx; i++)
        mproc__os_handle_close(c->rx[i]);
    c->nrx = 0;
}

/* The channel reads that take bytes out: whatever descriptors come with
 * them are kept for the frame (backend.h, C16). */
static int64_t take_bytes(mproc_conn *c, void *a, size_t na, void *b, size_t nb)
{
    size_t got = 0;
    int64_t r = mproc__os_chan_read_fds(c->h, a, na, b, nb, c->rx + c->nrx,
                                        MPROC__PASS_MAX - c->nrx, &got);
    c->nrx += got;
    return r;
}

static void drop_state(mproc_conn *c)
{
    rx_close(c);
    free(c->pk);
    free(c->big);
    c->pk = c->big = NULL;
    c->pk_pos = c->pk_len = c->part = c->big_len = 0;
}

static void conn_release(mproc_conn *c)
{
    mproc__os_handle_close(c->h);
    c->h = MPROC__BADHANDLE;
    drop_state(c);
    free(c->wbuf);
    c->wbuf = NULL;
    c->closed = true;
}

/* The rest of the stream cannot be framed: close the channel at once, so
 * that the peer's sends fail (MPROC_EPIPE) instead of filling it and then
 * blocking, and say MPROC_EFRAMING on every later call. */
static int break_framing(mproc_conn *c)
{
    mproc__os_handle_close(c->h);
    c->h = MPROC__BADHANDLE;
    drop_state(c);
    c->framing = true;
    return MPROC_EFRAMING;
}

/* ---------------------------------------------------------------------------
 * Helpers
 */

/* The cache, with one byte more than the largest record (a longer one is
 * told by that byte). */
static int pk_alloc(mproc_conn *c)
{
    if (c->pk == NULL) {
        c->pk = malloc(RBUF_CAP + 1);
        if (c->pk == NULL)
            return MPROC_ENOMEM;
    }
    return 0;
}

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

/* One read of at most n bytes into dst; MPROC_EEOF at end-of-file. */
static int read_some(mproc_conn *c, uint8_t *dst, size_t n, int64_t deadline,
                     size_t *got)
{
    uint8_t extra;
    int64_t r;
    int rc = wait_readable(c, deadline);
    if (rc < 0)
        return rc;
    if (c->rec) {
        /* One record, the next part of the frame: exactly min(n,
         * RBUF_CAP) bytes, and one byte more tells a longer one. */
        if (n > RBUF_CAP)
            n = RBUF_CAP;
        r = take_bytes(c, dst, n, &extra, 1);
    } else {
        r = take_bytes(c, dst, n, NULL, 0);
    }
    if (r < 0)
        return (int)r;
    if (r == 0) {
        c->eof = true;
        return MPROC_EEOF;
    }
    if (c->rec && (size_t)r != n)
        return break_framing(c); /* not the part of a frame of ours */
    *got = (size_t)r;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Peeking: what the next message is, without taking anything
 */

/* Peeks the head of the channel into the cache (from its start: the cache
 * then holds what the channel holds), wanting at least `need` bytes; waits
 * up to timeout_ms when the channel is empty. The count cached, 0 when
 * nothing came, or a negative code. */
static int64_t refill(mproc_conn *c, size_t need, int timeout_ms)
{
    size_t want = c->ra_short ? need : RBUF_CAP;
    int64_t r;
    if (pk_alloc(c) < 0)
        return MPROC_ENOMEM;
    r = mproc__os_chan_peek(c->h, c->pk, want, timeout_ms);
    c->pk_pos = 0;
    c->pk_len = r > 0 ? (size_t)r : 0;
    if (r == MPROC_EEOF)
        c->eof = true;
    return r;
}

/* What probe finds at the head of the channel (nothing consumed). */
enum {
    AT_CACHE = 1, /* a whole small frame, in the cache */
    AT_LARGE = 2, /* the header of a large frame, or of a small one that
                     stopped arriving: to be taken in pieces */
    AT_HEAD = 3   /* part of a header that stopped arriving */
};

/* Waits (until `deadline`) for the next message to begin: AT_* with *len
 * (the frame's length, unless AT_HEAD), or MPROC_ETIMEDOUT, MPROC_EEOF,
 * MPROC_EFRAMING, another negative code. */
static int probe(mproc_conn *c, int64_t deadline, size_t *len)
{
    int spins = 0;
    for (;;) {
        size_t avail = c->pk_len - c->pk_pos;
        size_t need = HDR;
        int64_t r;
        if (avail >= HDR) {
            int64_t hl = hdr_len(c->pk + c->pk_pos);
            size_t l;
            if (hl < 0)
                return break_framing(c); /* not one of ours */
            l = (size_t)hl;
            *len = l;
            if (HDR + l > RBUF_CAP)
                return AT_LARGE;
            if (avail >= HDR + l)
                return AT_CACHE;
            need = HDR + l;
        } else if (c->eof) {
            return MPROC_EEOF;
        }
        r = refill(c, need, avail == 0 ? mproc__remaining(deadline) : 0);
        if (r < 0)
            return (int)r;
        if (r == 0 && avail == 0)
            return MPROC_ETIMEDOUT;
        if ((size_t)r > avail) {
            spins = 0;
            continue;
        }
        /* The frame began to arrive and stopped: its sender is in the
         * middle of the write (the rest comes at once), preempted, or
         * gone. A few chances, then in pieces. */
        if (r > 0 && ++spins > SPIN_MAX)
            return (size_t)r >= HDR ? AT_LARGE : AT_HEAD;
        mproc__os_yield();
    }
}

/* Takes the whole frame at the head of the cache (AT_CACHE) out of the
 * channel, with one read back into the cache where it was peeked (the
 * bytes are all there, so the read neither waits nor stops short, and the
 * frame leaves the channel at once: a scatter read is two reads on
 * Windows, and a process killed between them would tear the stream), then
 * copies the payload to dst unless dst is NULL. */
static int take_cached(mproc_conn *c, size_t len, uint8_t *dst)
{
    uint8_t *p = c->pk + c->pk_pos;
    size_t n = HDR + len, got = 0;
    while (got < n) {
        int64_t r = take_bytes(c, p + got, n - got, NULL, 0);
        if (r < 0 && got == 0)
            return (int)r;
        if (r <= 0)
            return break_framing(c); /* torn: the bytes were not there */
        got += (size_t)r;
    }
    /* Another process read what this one peeked (two users of one end at
     * once): the stream is lost. */
    if (hdr_len(p) != (int64_t)len)
        return break_framing(c);
    if (dst != NULL && len > 0)
        memcpy(dst, p + HDR, len);
    c->pk_pos += n;
    if (c->pk_pos == c->pk_len)
        c->pk_pos = c->pk_len = 0;
    c->ra_short = false;
    return 0;
}

/* ---------------------------------------------------------------------------
 * The frame in progress
 */

/* Begins taking the frame at the head of the channel in pieces (AT_LARGE
 * with its length, or AT_HEAD): its header and, when `dst` is given (room
 * for the payload, len bytes), as much of the payload as is there. The
 * bytes of the header peeked are in the channel, so the read does not
 * wait. */
static int start_frame(mproc_conn *c, uint8_t *dst, size_t len)
{
    size_t avail = c->pk_len - c->pk_pos;
    size_t nh = avail < HDR ? avail : HDR;
    int64_t r;
    c->pk_pos = c->pk_len = 0; /* the cache ends here */
    if (dst != NULL && nh == HDR)
        r = take_bytes(c, c->hdr, HDR, dst, len);
    else
        r = take_bytes(c, c->hdr, nh, NULL, 0);
    if (r < 0)
        return (int)r;
    if (r == 0) {
        c->eof = true;
        return MPROC_EEOF;
    }
    c->part = (size_t)r;
    return 0;
}

/* Ends the frame in progress. */
static void end_frame(mproc_conn *c)
{
    c->ra_short = HDR + get_le32(c->hdr) > RBUF_CAP;
    free(c->big);
    c->big = NULL;
    c->big_len = c->part = 0;
}

/* End-of-file in the middle of the frame: it is lost with its sender. */
static int drop_frame(mproc_conn *c)
{
    free(c->big);
    c->big = NULL;
    c->big_len = c->part = 0;
    return MPROC_EEOF;
}

/* Completes the header of the frame in progress: 0 with *len, or the code
 * the wait ended with (the part read is kept). */
static int frame_header(mproc_conn *c, int64_t deadline, size_t *len)
{
    while (c->part < HDR) {
        size_t got = 0;
        int rc = read_some(c, c->hdr + c->part, HDR - c->part, deadline, &got);
        if (rc == MPROC_EEOF)
            return drop_frame(c);
        if (rc < 0)
            return rc;
        c->part += got;
    }
    if (hdr_len(c->hdr) < 0)
        return break_framing(c);
    *len = (size_t)hdr_len(c->hdr);
    return 0;
}

/* Reads the rest of the payload of the frame in progress (`len` bytes) into
 * dst, which holds its first part - HDR bytes already: c->big, or the
 * caller's buffer, into which they were copied. If it stops part-way, what
 * came is kept in c->big (allocated here if dst is not it), so that no call
 * loses or tears the message; end-of-file drops it. */
static int frame_payload(mproc_conn *c, uint8_t *dst, size_t len,
                         int64_t deadline)
{
    size_t have = c->part - HDR;
    /* What c->big holds when dst is not it: everything before this call
     * (copied to dst by the caller), or nothing yet. */
    size_t kept = c->big != NULL ? have : 0;
    int rc = 0;
    while (have < len) {
        size_t got = 0;
        rc = read_some(c, dst + have, len - have, deadline, &got);
        if (rc < 0)
            break;
        have += got;
        /* The timeout holds while the message is still coming, too: each
         * call takes at least one read's worth, and stops at its
         * deadline. */
        if (have < len && deadline >= 0 && mproc__remaining(deadline) == 0) {
            rc = MPROC_ETIMEDOUT;
            break;
        }
    }
    if (rc == MPROC_EFRAMING)
        return rc; /* the end is closed, its state dropped */
    c->part = HDR + have;
    if (rc == 0)
        return 0;
    if (rc == MPROC_EEOF)
        return drop_frame(c);
    if (dst != c->big && have > kept) {
        if (c->big == NULL) {
            c->big = malloc(len);
            if (c->big == NULL) {
                /* Nowhere to keep the part received: the stream cannot be
                 * framed any more. */
                (void)break_framing(c);
                return MPROC_ENOMEM;
            }
            c->big_len = len;
        }
        memcpy(c->big + kept, dst + kept, have - kept);
    }
    return rc;
}

/* The frame in progress needs an allocation of its own for its payload. */
static int frame_alloc(mproc_conn *c, size_t len)
{
    if (c->big != NULL)
        return 0;
    c->big = malloc(len > 0 ? len : 1);
    if (c->big == NULL)
        return MPROC_ENOMEM;
    c->big_len = len;
    return 0;
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
    if (c->framing)
        return MPROC_EFRAMING;
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
    if (c->framing)
        return MPROC_EFRAMING;
    return 0;
}

/* Receives a frame into c->big, taken in pieces: from its beginning
 * (`start`: AT_LARGE with *len, or AT_HEAD, as probe found it) or, start 0,
 * from where an earlier receive stopped. 0 with all *len bytes of it in
 * c->big (end_frame once used), or the code the wait ended with. */
static int recv_into_big(mproc_conn *c, int start, size_t *len,
                         int64_t deadline)
{
    int rc;
    if (start == AT_LARGE && (rc = frame_alloc(c, *len)) < 0)
        return rc;
    if (start != 0 && (rc = start_frame(c, c->big, *len)) < 0)
        return rc;
    rc = frame_header(c, deadline, len);
    if (rc == 0)
        rc = frame_alloc(c, *len);
    if (rc == 0)
        rc = frame_payload(c, c->big, *len, deadline);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Records
 */

/* Takes the first record of the next frame (waiting until `deadline`):
 * into dst, room for RBUF_CAP - HDR + 1 bytes of payload, the header going
 * to c->hdr; or, dst NULL, into the cache (header and payload). 0 with
 * *len the frame's length; a large frame is then in progress (c->part
 * bytes of it taken, its first payload bytes where they were read). */
static int rec_first(mproc_conn *c, uint8_t *dst, int64_t deadline, size_t *len)
{
    size_t got, want;
    int64_t r, hl = -1;
    int rc = wait_readable(c, deadline);
    if (rc < 0)
        return rc;
    if (dst != NULL) {
        r = take_bytes(c, c->hdr, HDR, dst, RBUF_CAP - HDR + 1);
    } else {
        if (pk_alloc(c) < 0)
            return MPROC_ENOMEM;
        r = take_bytes(c, c->pk, RBUF_CAP + 1, NULL, 0);
    }
    if (r < 0)
        return (int)r;
    if (r == 0) {
        c->eof = true;
        return MPROC_EEOF;
    }
    got = (size_t)r;
    if (got >= HDR) {
        if (dst == NULL)
            memcpy(c->hdr, c->pk, HDR);
        hl = hdr_len(c->hdr);
    }
    if (hl < 0)
        return break_framing(c); /* not one of ours */
    want = HDR + (size_t)hl;
    if (got != (want < RBUF_CAP ? want : RBUF_CAP))
        return break_framing(c); /* the record is not the frame's */
    *len = (size_t)hl;
    if (want > RBUF_CAP)
        c->part = got;
    return 0;
}

/* The frame taken (c->part bytes of it) is kept in c->big, allocated for
 * all of its len bytes; its payload so far is at `from`. The bytes are out
 * of the channel, so without room for them the stream is lost. */
static int rec_keep(mproc_conn *c, const uint8_t *from, size_t len)
{
    if (frame_alloc(c, len) < 0) {
        (void)break_framing(c);
        return MPROC_ENOMEM;
    }
    if (c->part > HDR)
        memcpy(c->big, from, c->part - HDR);
    return 0;
}

/* Writes n bytes of frames (headers included): one write on a byte
 * stream; on a record channel, records of RBUF_CAP bytes and a last
 * shorter one. */
static int write_frame(mproc_conn *c, const uint8_t *p, size_t n)
{
    if (!c->rec)
        return mproc__os_chan_write(c->h, p, n);
    while (n > 0) {
        size_t k = n < RBUF_CAP ? n : RBUF_CAP;
        int rc = mproc__os_chan_write(c->h, p, k);
        if (rc < 0)
            return rc;
        p += k;
        n -= k;
    }
    return 0;
}

/* ---------------------------------------------------------------------------
 * Public calls
 */

int mproc_pipe(mproc_conn **a, mproc_conn **b, bool duplex)
{
    mproc__handle h[2];
    bool rec;
    int rc;
    if (a == NULL || b == NULL)
        return MPROC_EINVAL;
    *a = *b = NULL;
    rc = mproc__os_rec_pair(h, duplex);
    rec = rc == 0;
    if (rc == MPROC_ENOSYS)
        rc = mproc__os_chan_pair(h, duplex);
    if (rc < 0)
        return rc;
    rc = conn_new(a, h[0], true, duplex);
    if (rc == 0)
        rc = conn_new(b, h[1], duplex, true);
    if (rc == 0)
        (*a)->rec = (*b)->rec = rec;
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
        put_hdr(c->wbuf, len);
        if (len > 0)
            memcpy(c->wbuf + HDR, buf, len);
        return mproc__os_chan_write(c->h, c->wbuf, HDR + len);
    }
    put_hdr(hdr, len);
    if (c->rec) {
        /* The first record: the header and the payload's first part. */
        size_t first = RBUF_CAP - HDR;
        int rc = mproc__os_chan_writev(c->h, hdr, HDR, buf, first);
        if (rc < 0)
            return rc;
        return write_frame(c, (const uint8_t *)buf + first, len - first);
    }
    return mproc__os_chan_writev(c->h, hdr, HDR, buf, len);
}

/* ---------------------------------------------------------------------------
 * Handles to a running process (C16, docs/wire-format.md)
 *
 * A value holding handles goes as a pass frame: its payload is
 *
 *   u32 magic "MPH1"; u32 flags (PASS_RAW: one raw handle, no value);
 *   u32 n (1..MPROC__PASS_MAX); u32 0; i64 sender pid; n x i64 values;
 *   then, for a value, its encoding, whose handle fields are indices into
 *   the n handles (mproc__encode_table)
 *
 * and the handles travel as the backend has them travel (backend.h: with
 * the bytes on POSIX, pulled from the sender on Windows). A value's
 * encoding starts with another magic, so the two never meet.
 */

#define PASS_MAGIC 0x3148504du /* "MPH1" */
#define PASS_RAW 1u
#define PASS_FIXED 24u

static bool is_pass(const uint8_t *msg, size_t len)
{
    return len >= 4 && get_le32(msg) == PASS_MAGIC;
}

/* Writes one pass frame: the table of `hl` (prepared by the backend) and
 * the encoding enc[0..nenc). */
static int send_pass(mproc_conn *c, uint32_t flags,
                     const mproc__handle_list *hl, const uint8_t *enc,
                     size_t nenc)
{
    int64_t sender = 0, values[MPROC__PASS_MAX];
    size_t n = hl->n, len = PASS_FIXED + 8 * n + nenc, i;
    uint8_t *f;
    int rc;
    if (n == 0 || n > MPROC__PASS_MAX)
        return MPROC_EINVAL; /* more OS handles than one message carries */
    if (len > MPROC_MESSAGE_MAX)
        return MPROC_EMSGSIZE;
    f = malloc(HDR + len);
    if (f == NULL)
        return MPROC_ENOMEM;
    rc = mproc__os_pass_prepare(c->h, hl->h, n, &sender, values);
    if (rc < 0) {
        free(f);
        return rc;
    }
    put_hdr(f, len);
    put_le32(f + HDR, PASS_MAGIC);
    put_le32(f + HDR + 4, flags);
    put_le32(f + HDR + 8, (uint32_t)n);
    put_le32(f + HDR + 12, 0);
    put_le32(f + HDR + 16, (uint32_t)(uint64_t)sender);
    put_le32(f + HDR + 20, (uint32_t)((uint64_t)sender >> 32));
    for (i = 0; i < n; i++) {
        put_le32(f + HDR + PASS_FIXED + 8 * i, (uint32_t)(uint64_t)values[i]);
        put_le32(f + HDR + PASS_FIXED + 8 * i + 4,
                 (uint32_t)((uint64_t)values[i] >> 32));
    }
    if (nenc > 0)
        memcpy(f + HDR + PASS_FIXED + 8 * n, enc, nenc);
    {
        /* The descriptors go with the first record (all of a byte
         * stream's frame). */
        size_t first = c->rec && HDR + len > RBUF_CAP ? RBUF_CAP : HDR + len;
        rc = mproc__os_chan_write_pass(c->h, f, first, hl->h, n);
        if (rc == 0 && first < HDR + len)
            rc = write_frame(c, f + first, HDR + len - first);
    }
    if (rc < 0)
        mproc__os_pass_abort(values, n);
    free(f);
    return rc;
}

/* The table of a pass frame: 0 with its parts, or MPROC_EBADMSG. */
static int pass_parse(const uint8_t *msg, size_t len, uint32_t *flags,
                      size_t *n, int64_t *sender, int64_t *values,
                      const uint8_t **rest, size_t *nrest)
{
    size_t i;
    uint32_t k;
    if (len < PASS_FIXED || get_le32(msg) != PASS_MAGIC)
        return MPROC_EBADMSG;
    *flags = get_le32(msg + 4);
    k = get_le32(msg + 8);
    if ((*flags & ~PASS_RAW) != 0 || k == 0 || k > MPROC__PASS_MAX ||
        get_le32(msg + 12) != 0 || len < PASS_FIXED + 8 * (size_t)k)
        return MPROC_EBADMSG;
    *n = k;
    *sender = (int64_t)((uint64_t)get_le32(msg + 16) |
                        (uint64_t)get_le32(msg + 20) << 32);
    for (i = 0; i < k; i++)
        values[i] =
            (int64_t)((uint64_t)get_le32(msg + PASS_FIXED + 8 * i) |
                      (uint64_t)get_le32(msg + PASS_FIXED + 8 * i + 4) << 32);
    *rest = msg + PASS_FIXED + 8 * (size_t)k;
    *nrest = len - PASS_FIXED - 8 * (size_t)k;
    return 0;
}

/* The handles a pass frame names, as handles of this process (hs), or the
 * reason they are not here. The descriptors that came are used or closed. */
static int pass_take(mproc_conn *c, const uint8_t *msg, size_t len,
                     uint32_t *flags, size_t *n, mproc__handle *hs,
                     const uint8_t **rest, size_t *nrest)
{
    int64_t sender, values[MPROC__PASS_MAX];
    int rc = pass_parse(msg, len, flags, n, &sender, values, rest, nrest);
    if (rc == 0)
        rc = mproc__os_pass_take(sender, values, *n, c->rx, c->nrx, hs);
    if (rc == 0)
        c->nrx = 0; /* they are hs now */
    else
        *n = 0; /* no handle of hs is the caller's */
    rx_close(c);
    return rc;
}

/* A received message as a value: decoded, its handles (if any) made
 * objects of this process. Every descriptor that came with it is owned by
 * the value or closed. */
static int finish_value(mproc_conn *c, const uint8_t *msg, size_t len,
                        mproc_value **out)
{
    mproc__handle hs[MPROC__PASS_MAX];
    bool taken[MPROC__PASS_MAX];
    const uint8_t *rest;
    size_t n = 0, nrest = 0, i;
    uint32_t flags = 0;
    int rc;
    *out = NULL;
    if (!is_pass(msg, len)) {
        rx_close(c); /* descriptors nobody announced */
        rc = mproc__decode(msg, len, false, out);
        if (rc < 0) {
            *out = NULL;
            return rc == MPROC_ENOMEM ? rc : MPROC_EBADMSG;
        }
        return 0;
    }
    rc = pass_take(c, msg, len, &flags, &n, hs, &rest, &nrest);
    if (rc < 0)
        return rc;
    memset(taken, 0, sizeof taken);
    rc = (flags & PASS_RAW)
             ? MPROC_EBADMSG
             : mproc__decode_table(rest, nrest, hs, taken, n, out);
    if (rc < 0) {
        *out = NULL;
        if (rc != MPROC_ENOMEM && rc != MPROC_ERESOLVE)
            rc = MPROC_EBADMSG;
    }
    for (i = 0; i < n; i++)
        if (!taken[i])
            mproc__os_handle_close(hs[i]);
    return rc;
}

int mproc_conn_send_handle(mproc_conn *c, intptr_t handle)
{
    mproc__handle_list hl = {NULL, 0, 0};
    int rc = check_send(c);
    if (rc < 0)
        return rc;
    if (handle == (intptr_t)MPROC__BADHANDLE ||
        mproc__os_handle_check((mproc__handle)handle) != 0)
        return MPROC_EINVAL;
    rc = mproc__handle_list_add(&hl, (mproc__handle)handle);
    if (rc == 0)
        rc = send_pass(c, PASS_RAW, &hl, NULL, 0);
    mproc__handle_list_free(&hl);
    return rc;
}

int mproc_conn_send(mproc_conn *c, const mproc_value *v)
{
    mproc__buf b = {NULL, 0, 0};
    mproc__handle_list hl = {NULL, 0, 0};
    int rc = check_send(c);
    if (rc < 0)
        return rc;
    if (v == NULL)
        return MPROC_EINVAL;
    /* Room for the header first, so that the frame goes in one write. */
    rc = mproc__buf_reserve(&b, HDR);
    if (rc == 0) {
        b.n = HDR;
        rc = mproc__encode_table(v, &b, &hl);
    }
    if (rc == 0 && hl.n > 0) {
        rc = send_pass(c, 0, &hl, b.p + HDR, b.n - HDR);
        mproc__handle_list_free(&hl);
        mproc__buf_free(&b);
        return rc;
    }
    mproc__handle_list_free(&hl);
    if (rc == 0) {
        size_t len = b.n - HDR;
        if (len > MPROC_MESSAGE_MAX) {
            rc = MPROC_EMSGSIZE;
        } else {
            put_hdr(b.p, len);
            rc = write_frame(c, b.p, b.n);
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

/* Receives one whole message: *msg points into the cache, or (*big) into
 * c->big, which the caller releases with end_frame once done. */
static int recv_msg(mproc_conn *c, int timeout_ms, const uint8_t **msg,
                    size_t *len, bool *big)
{
    int64_t deadline = mproc__deadline(timeout_ms);
    int start = 0;
    int rc;
    *len = 0;
    *big = false;
    if (c->rec && c->part == 0) {
        rc = rec_first(c, NULL, deadline, len);
        if (rc < 0)
            return rc;
        if (c->part == 0) {
            *msg = c->pk + HDR;
            return 0;
        }
        rc = rec_keep(c, c->pk + HDR, *len);
        if (rc < 0)
            return rc;
    } else if (c->part == 0) {
        rc = probe(c, deadline, len);
        if (rc < 0)
            return rc;
        if (rc == AT_CACHE) {
            *msg = c->pk + c->pk_pos + HDR;
            /* the bytes stay where they were peeked */
            return take_cached(c, *len, NULL);
        }
        start = rc;
    }
    rc = recv_into_big(c, start, len, deadline);
    if (rc < 0)
        return rc;
    *msg = c->big;
    *big = true;
    return 0;
}

int mproc_conn_recv(mproc_conn *c, mproc_value **out, int timeout_ms)
{
    const uint8_t *msg = NULL;
    size_t len = 0;
    bool big = false;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = NULL;
    rc = recv_msg(c, timeout_ms, &msg, &len, &big);
    if (rc < 0)
        return rc;
    rc = finish_value(c, msg, len, out);
    if (big)
        end_frame(c);
    return rc;
}

int mproc_conn_recv_handle(mproc_conn *c, intptr_t *out, int timeout_ms)
{
    mproc__handle hs[MPROC__PASS_MAX];
    const uint8_t *msg = NULL, *rest;
    size_t len = 0, n = 0, nrest = 0, i;
    uint32_t flags = 0;
    bool big = false;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = (intptr_t)MPROC__BADHANDLE;
    rc = recv_msg(c, timeout_ms, &msg, &len, &big);
    if (rc < 0)
        return rc;
    if (!is_pass(msg, len)) {
        rx_close(c);
        rc = MPROC_EBADMSG; /* a message, not a handle: consumed */
    } else {
        rc = pass_take(c, msg, len, &flags, &n, hs, &rest, &nrest);
        if (rc == 0 && (!(flags & PASS_RAW) || n != 1 || nrest != 0)) {
            for (i = 0; i < n; i++)
                mproc__os_handle_close(hs[i]);
            rc = MPROC_EBADMSG;
        } else if (rc == 0) {
            *out = (intptr_t)hs[0];
        }
    }
    if (big)
        end_frame(c);
    return rc;
}

/* recv_bytes on a record channel, from a message's beginning: 0 with the
 * whole message in buf, 1 when a frame is in progress (a large one, or one
 * kept for the next receive), or a negative code. A buffer that holds any
 * record's payload is read into directly (one system call); a smaller one
 * peeks first, so that a message too large for it is not taken. */
static int rec_bytes_first(mproc_conn *c, uint8_t *buf, size_t cap,
                           int64_t deadline, size_t *len)
{
    bool direct = buf != NULL && cap >= RBUF_CAP - HDR + 1;
    const uint8_t *src;
    size_t n = 0;
    int rc;
    if (!direct) {
        int64_t r, hl;
        if (pk_alloc(c) < 0)
            return MPROC_ENOMEM;
        r = mproc__os_chan_peek(c->h, c->pk, RBUF_CAP + 1,
                                mproc__remaining(deadline));
        if (r == MPROC_EEOF)
            c->eof = true;
        if (r < 0)
            return (int)r;
        if (r == 0)
            return MPROC_ETIMEDOUT;
        if ((size_t)r >= HDR && (hl = hdr_len(c->pk)) >= 0 &&
            (size_t)hl > cap) {
            *len = (size_t)hl;
            return MPROC_ETOOSMALL; /* nothing taken: it stays */
        }
    }
    rc = rec_first(c, direct ? buf : NULL, deadline, &n);
    if (rc < 0)
        return rc;
    *len = n;
    src = direct ? buf : c->pk + HDR;
    if (c->part == 0) {
        if (n <= cap) {
            if (!direct && n > 0)
                memcpy(buf, src, n);
            return 0;
        }
        /* Another reader took what was peeked: kept for the next
         * receive. */
        c->part = HDR + n;
    }
    if (!direct || n > cap) {
        rc = rec_keep(c, src, n);
        if (rc < 0)
            return rc;
    }
    return 1;
}

int mproc_conn_recv_bytes(mproc_conn *c, void *buf, size_t cap, size_t *len,
                          int timeout_ms)
{
    int64_t deadline;
    size_t n = 0;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    if (len == NULL || (buf == NULL && cap > 0))
        return MPROC_EINVAL;
    deadline = mproc__deadline(timeout_ms);
    if (c->rec && c->part == 0) {
        rc = rec_bytes_first(c, buf, cap, deadline, len);
        if (rc <= 0)
            return rc; /* the whole message, or nothing */
    } else if (c->part == 0) {
        rc = probe(c, deadline, &n);
        if (rc < 0)
            return rc;
        if (rc != AT_HEAD) {
            *len = n;
            if (n > cap)
                return MPROC_ETOOSMALL; /* nothing taken: it stays */
        }
        if (rc == AT_CACHE)
            return take_cached(c, n, buf);
        rc = start_frame(c, rc == AT_LARGE ? buf : NULL, n);
        if (rc < 0)
            return rc;
    }
    rc = frame_header(c, deadline, &n);
    if (rc < 0)
        return rc;
    *len = n;
    if (n > cap)
        return MPROC_ETOOSMALL; /* kept for the next receive */
    /* What an earlier receive took of it comes first. */
    if (c->big != NULL && c->part > HDR && buf != NULL)
        memcpy(buf, c->big, c->part - HDR);
    rc = frame_payload(c, buf, n, deadline);
    if (rc < 0)
        return rc;
    end_frame(c);
    return 0;
}

int mproc_conn_recv_bytes_alloc(mproc_conn *c, void **buf, size_t *len,
                                int timeout_ms)
{
    int64_t deadline;
    size_t n = 0;
    int start = 0;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    if (buf == NULL || len == NULL)
        return MPROC_EINVAL;
    *buf = NULL;
    *len = 0;
    deadline = mproc__deadline(timeout_ms);
    if (c->rec && c->part == 0) {
        rc = rec_first(c, NULL, deadline, &n);
        if (rc < 0)
            return rc;
        if (c->part == 0) {
            /* The cache itself when there is no room for a copy: the
             * message is out of the channel. */
            uint8_t *p = malloc(n > 0 ? n : 1);
            if (p != NULL) {
                memcpy(p, c->pk + HDR, n);
            } else {
                p = c->pk;
                c->pk = NULL;
                memmove(p, p + HDR, n);
            }
            *buf = p;
            *len = n;
            return 0;
        }
        rc = rec_keep(c, c->pk + HDR, n);
        if (rc < 0)
            return rc;
    } else if (c->part == 0) {
        rc = probe(c, deadline, &n);
        if (rc < 0)
            return rc;
        if (rc == AT_CACHE) {
            uint8_t *p = malloc(n > 0 ? n : 1);
            if (p == NULL)
                return MPROC_ENOMEM;
            rc = take_cached(c, n, p);
            if (rc < 0) {
                free(p);
                return rc;
            }
            *buf = p;
            *len = n;
            return 0;
        }
        start = rc;
    }
    /* One allocation of the exact size, read into directly. */
    rc = recv_into_big(c, start, &n, deadline);
    if (rc < 0)
        return rc;
    *buf = c->big; /* handed over, not copied */
    *len = n;
    c->big = NULL;
    end_frame(c);
    return 0;
}

int mproc_conn_poll(mproc_conn *c, int timeout_ms)
{
    size_t len;
    int rc = check_recv(c, timeout_ms);
    if (rc < 0)
        return rc;
    /* A frame in progress is ready when more of it (or end-of-file) is; on
     * a record channel, the next message is ready when its first record
     * (or end-of-file) is. */
    if (c->part > 0 || c->rec)
        return mproc__os_chan_poll(c->h, timeout_ms);
    rc = probe(c, mproc__deadline(timeout_ms), &len);
    if (rc > 0 || rc == MPROC_EEOF)
        return 1; /* a receive would not wait for the message to begin */
    if (rc == MPROC_ETIMEDOUT)
        return 0;
    return rc;
}

int mproc_conn_readable(const mproc_conn *c)
{
    return c == NULL ? MPROC_EINVAL : c->readable;
}

int mproc_conn_writable(const mproc_conn *c)
{
    return c == NULL ? MPROC_EINVAL : c->writable;
}

int mproc_conn_closed(const mproc_conn *c)
{
    return c == NULL ? MPROC_EINVAL : c->closed || c->framing;
}

int mproc_conn_adopt(mproc_conn **out, intptr_t handle, bool readable,
                     bool writable)
{
    mproc__handle h = MPROC__BADHANDLE;
    int rc;
    if (out == NULL)
        return MPROC_EINVAL;
    *out = NULL;
    if ((!readable && !writable) || handle == (intptr_t)MPROC__BADHANDLE)
        return MPROC_EINVAL;
    rc = mproc__os_chan_adopt((mproc__handle)handle, &h);
    if (rc < 0)
        return rc;
    rc = conn_new(out, h, readable, writable);
    if (rc < 0)
        mproc__os_handle_close(h); /* ours now: the number may have moved */
    else
        (*out)->rec = mproc__os_chan_records(h) == 1;
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
 * Blob: one flags byte (1 readable, 2 writable, 4 end-of-file seen). Nothing
 * was read ahead, so the channel itself holds every message for the child.
 * The cache is dropped: once the child has used the end it no longer shows
 * what is in the channel. An end with a frame in progress (a receive that
 * timed out part-way through a large message) cannot be passed:
 * MPROC_ESTATE until that message is received.
 */

int mproc__conn_export(mproc_conn *c, mproc__export *ex)
{
    if (c == NULL || ex == NULL)
        return MPROC_EINVAL;
    if (c->closed)
        return MPROC_ECLOSED;
    if (c->framing)
        return MPROC_EFRAMING;
    if (c->part > 0)
        return MPROC_ESTATE;
    c->pk_pos = c->pk_len = 0;
    ex->h[0] = c->h;
    ex->nh = 1;
    ex->blob[0] = (uint8_t)((c->readable ? 1 : 0) | (c->writable ? 2 : 0) |
                            (c->eof ? 4 : 0) | (c->rec ? 8 : 0));
    ex->nblob = 1;
    return 0;
}

int mproc__conn_import(const mproc__export *ex, mproc_conn **out)
{
    mproc_conn *c;
    int rc;
    if (ex == NULL || out == NULL)
        return MPROC_EINVAL;
    if (ex->nh != 1 || ex->nblob != 1 || (ex->blob[0] & ~15u) != 0 ||
        (ex->blob[0] & 3u) == 0)
        return MPROC_EBADMSG;
    rc = conn_new(&c, ex->h[0], (ex->blob[0] & 1) != 0, (ex->blob[0] & 2) != 0);
    if (rc < 0)
        return rc;
    c->eof = (ex->blob[0] & 4) != 0;
    c->rec = (ex->blob[0] & 8) != 0;
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
    avail = c->pk_len - c->pk_pos;
    /* A message whose first bytes are known is ready (a header that is no
     * header too: the receive reports it); the channel's own readiness
     * tells the rest (a receive then does not wait for a message to
     * begin). */
    *ready_now = c->eof || c->framing;
    if (c->part == 0 && avail >= HDR) {
        int64_t l = hdr_len(c->pk + c->pk_pos);
        *ready_now = *ready_now || l < 0 || HDR + (size_t)l > RBUF_CAP ||
                     avail - HDR >= (size_t)l;
    }
    return 0;
}
