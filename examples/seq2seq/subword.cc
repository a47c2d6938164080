// SentencePiece behind a C interface (see subword.h). Every entry point
// catches all C++ exceptions (std::bad_alloc included) and turns them and
// SentencePiece's status codes into -1/NULL and a one-line message.
#include "subword.h"

#include <cctype>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include <zlib.h>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

struct s2s_subword {
    sentencepiece::SentencePieceProcessor sp;
};

namespace {

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    // one line: SentencePiece messages may hold newlines
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
}

// Copies s into a malloc'd C string (NULL when out of memory).
char *dup_string(const std::string &s)
{
    char *out = static_cast<char *>(std::malloc(s.size() + 1));
    if (!out) return nullptr;
    std::memcpy(out, s.data(), s.size());
    out[s.size()] = '\0';
    return out;
}

// The training sentences, in the order given, straight from memory.
class ArrayIterator : public sentencepiece::SentenceIterator {
public:
    ArrayIterator(const char *const *s, size_t n) : s_(s), n_(n) { load(); }
    bool done() const override { return i_ >= n_; }
    void Next() override { i_++; load(); }
    const std::string &value() const override { return cur_; }
    sentencepiece::util::Status status() const override { return {}; }

private:
    void load()
    {
        if (i_ < n_) cur_ = s_[i_] ? s_[i_] : "";
    }
    const char *const *s_;
    size_t n_, i_ = 0;
    std::string cur_;
};

// Refuses a model too small, with specials other than the program's ids
// (pairs.h), or whose pieces do not name their ids one to one.
int check_pieces(const sentencepiece::SentencePieceProcessor &sp, const char *label, char *err,
                   size_t errlen)
{
    int n = sp.GetPieceSize();
    if (n < S2S_SUBWORD_MIN) {
        set_err(err, errlen, "%s: piece model has %d pieces (at least %d needed)", label, n,
                S2S_SUBWORD_MIN);
        return -1;
    }
    if (sp.pad_id() != 0 || sp.unk_id() != 1 || sp.bos_id() != 2 || sp.eos_id() != 3) {
        set_err(err, errlen,
                "%s: piece model has specials pad=%d unk=%d bos=%d eos=%d, not 0 1 2 3 "
                "(not trained by tapegrad?)",
                label, sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id());
        return -1;
    }
    // The C API hands out pieces as C strings and looks them up by text:
    // every piece must be NUL-free and name exactly its own id.
    for (int id = 0; id < n; id++) {
        const std::string &piece = sp.IdToPiece(id);
        if (piece.empty() || piece.find('\0') != std::string::npos || sp.PieceToId(piece) != id) {
            set_err(err, errlen, "%s: piece model is damaged (piece %d is empty, holds a NUL "
                    "byte or repeats another)", label, id);
            return -1;
        }
    }
    return 0;
}

const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const std::string &in)
{
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        uint32_t v = (uint32_t)(uint8_t)in[i] << 16 | (uint32_t)(uint8_t)in[i + 1] << 8 |
                     (uint8_t)in[i + 2];
        out += B64[v >> 18];
        out += B64[v >> 12 & 63];
        out += B64[v >> 6 & 63];
        out += B64[v & 63];
    }
    size_t rest = in.size() - i;
    if (rest) {
        uint32_t v = (uint32_t)(uint8_t)in[i] << 16;
        if (rest == 2) v |= (uint32_t)(uint8_t)in[i + 1] << 8;
        out += B64[v >> 18];
        out += B64[v >> 12 & 63];
        out += rest == 2 ? B64[v >> 6 & 63] : '=';
        out += '=';
    }
    return out;
}

int b64_value(char c)
{
    const char *p = c ? std::strchr(B64, c) : nullptr;
    return p ? (int)(p - B64) : -1;
}

// Strict base64 (padded, canonical final bits): false on anything else.
bool base64_decode(const char *s, size_t n, std::string *out)
{
    if (n % 4) return false;
    out->clear();
    out->reserve(n / 4 * 3);
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            v[k] = b64_value(s[i + k]);
            if (s[i + k] == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (v[k] < 0 || pad) {
                return false; // bad character, or data after '='
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
                     (uint32_t)v[3];
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff))) return false;
        *out += (char)(w >> 16);
        if (pad < 2) *out += (char)(w >> 8 & 0xff);
        if (pad < 1) *out += (char)(w & 0xff);
    }
    return true;
}

uint32_t crc_of(const void *data, size_t size)
{
    uLong c = crc32(0L, Z_NULL, 0);
    const Bytef *p = static_cast<const Bytef *>(data);
    size_t left = size;
    while (left) { // crc32 takes a uInt length
        uInt chunk = left > (1u << 30) ? (1u << 30) : (uInt)left;
        c = crc32(c, p, chunk);
        p += chunk;
        left -= chunk;
    }
    return (uint32_t)c;
}

const char TEXT_PREFIX[] = "spm1:";

// ---- normalization tables
//
// A ModelProto carries its normalizer's (and denormalizer's) table as a
// precompiled blob: a double-array trie and the strings it maps to, which
// SentencePiece walks without bounds checks, so a damaged blob reads out of
// memory when text is normalized (found by fuzzing: a SEGV in
// Normalizer::NormalizePrefix). We accept a table only if it is absent or
// exactly the one SentencePiece builds for the rule we train with
// (nmt_nfkc: its length and CRC-32 below), read from the protobuf wire
// format before SentencePiece sees the bytes.
const size_t NMT_NFKC_TABLE_BYTES = 237561;
const uint32_t NMT_NFKC_TABLE_CRC = 0x3a13efa4;

struct wire {
    const unsigned char *p, *end;
};

bool varint(wire &w, uint64_t &v)
{
    v = 0;
    for (int shift = 0; shift < 64 && w.p < w.end; shift += 7) {
        unsigned char b = *w.p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

// The next field of a message: its number and, for a length-delimited one,
// its bytes; other wire types are skipped. false at the end or on bad data.
bool next_field(wire &w, uint64_t &field, wire &bytes, bool &delimited)
{
    uint64_t key, len;
    if (w.p >= w.end || !varint(w, key)) return false;
    field = key >> 3;
    delimited = (key & 7) == 2;
    switch (key & 7) {
    case 0: return varint(w, len);
    case 1: if (w.end - w.p < 8) return false; w.p += 8; return true;
    case 5: if (w.end - w.p < 4) return false; w.p += 4; return true;
    case 2:
        if (!varint(w, len) || len > (uint64_t)(w.end - w.p)) return false;
        bytes = {w.p, w.p + len};
        w.p += len;
        return true;
    default: return false;
    }
}

// "" when the (de)normalizer tables of the ModelProto in `model` are absent
// or nmt_nfkc's, else what is wrong. Occurrences merge as protobuf's do: the
// last table of the last spec wins.
std::string tables_problem(const std::string &model)
{
    wire w = {reinterpret_cast<const unsigned char *>(model.data()),
              reinterpret_cast<const unsigned char *>(model.data()) + model.size()};
    wire field_bytes = {nullptr, nullptr}, table[2] = {{nullptr, nullptr}, {nullptr, nullptr}};
    uint64_t field;
    bool delimited;
    while (w.p < w.end) {
        if (!next_field(w, field, field_bytes, delimited))
            return "not a SentencePiece model (not a protobuf message)";
        if (!delimited || (field != 3 && field != 5)) continue; // normalizer, denormalizer
        wire spec = field_bytes, inner = {nullptr, nullptr};
        uint64_t f2;
        while (spec.p < spec.end && next_field(spec, f2, inner, delimited))
            if (delimited && f2 == 2) table[field == 5] = inner; // precompiled_charsmap
        if (spec.p < spec.end) return "not a SentencePiece model (a damaged normalizer spec)";
    }
    for (int k = 0; k < 2; k++) {
        size_t n = (size_t)(table[k].end - table[k].p);
        if (!table[k].p || n == 0) continue;
        if (n != NMT_NFKC_TABLE_BYTES || crc_of(table[k].p, n) != NMT_NFKC_TABLE_CRC)
            return std::string("piece model refused: its ") +
                   (k ? "denormalization" : "normalization") +
                   " table is not SentencePiece's nmt_nfkc (damaged, or another rule)";
    }
    return "";
}

s2s_subword *load_checked(const std::string &bytes, const char *label, char *err, size_t errlen)
{
    // unique_ptr: SentencePiece may throw from inside the load (darts-clone
    // does on a bad trie), and the half-built processor must still be freed
    std::string bad_tables = tables_problem(bytes);
    if (!bad_tables.empty()) {
        set_err(err, errlen, "%s: %s", label, bad_tables.c_str());
        return nullptr;
    }
    std::unique_ptr<s2s_subword> sw(new s2s_subword);
    auto st = sw->sp.LoadFromSerializedProto(bytes);
    if (!st.ok()) {
        set_err(err, errlen, "%s: not a SentencePiece model (%s)", label, st.ToString().c_str());
        return nullptr;
    }
    if (check_pieces(sw->sp, label, err, errlen) != 0) return nullptr;
    return sw.release();
}

} // namespace

extern "C" s2s_subword *s2s_subword_train(const char *const *sentences, size_t n, int pieces,
                                          char *err, size_t errlen)
{
    if (pieces < S2S_SUBWORD_MIN || pieces > S2S_SUBWORD_MAX) {
        set_err(err, errlen, "subwords: %d pieces asked, must be %d..%d", pieces,
                S2S_SUBWORD_MIN, S2S_SUBWORD_MAX);
        return nullptr;
    }
    if (n == 0 || !sentences) {
        set_err(err, errlen, "subwords: no sentences to learn pieces from");
        return nullptr;
    }
    try {
        std::unordered_map<std::string, std::string> args = {
            {"model_type", "unigram"},
            {"vocab_size", std::to_string(pieces)},
            {"hard_vocab_limit", "false"},
            {"character_coverage", "1.0"},
            {"num_threads", "1"},
            {"pad_id", "0"},
            {"unk_id", "1"},
            {"bos_id", "2"},
            {"eos_id", "3"},
            {"minloglevel", "2"}, // errors only; they come back in the status
        };
        sentencepiece::SetRandomGeneratorSeed(1);
        ArrayIterator it(sentences, n);
        std::string model;
        auto st = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
        if (!st.ok()) {
            set_err(err, errlen, "subwords: SentencePiece training failed: %s",
                    st.ToString().c_str());
            return nullptr;
        }
        return load_checked(model, "subwords: trained model", err, errlen);
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "subwords: out of memory while training");
    } catch (const std::exception &e) {
        set_err(err, errlen, "subwords: training failed: %s", e.what());
    } catch (...) {
        set_err(err, errlen, "subwords: training failed (unknown error)");
    }
    return nullptr;
}

extern "C" s2s_subword *s2s_subword_load(const void *bytes, size_t len, const char *label,
                                         char *err, size_t errlen)
{
    if (!label) label = "piece model";
    try {
        if (!bytes || len == 0) {
            set_err(err, errlen, "%s: piece model is empty", label);
            return nullptr;
        }
        return load_checked(std::string(static_cast<const char *>(bytes), len), label, err,
                            errlen);
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "%s: out of memory loading the piece model", label);
    } catch (const std::exception &e) {
        set_err(err, errlen, "%s: piece model refused: %s", label, e.what());
    } catch (...) {
        set_err(err, errlen, "%s: piece model refused (unknown error)", label);
    }
    return nullptr;
}

extern "C" int s2s_subword_serialize(const s2s_subword *sw, void **bytes, size_t *len, char *err,
                                     size_t errlen)
{
    try {
        std::string s = sw->sp.serialized_model_proto();
        void *out = std::malloc(s.size() ? s.size() : 1);
        if (!out) throw std::bad_alloc();
        std::memcpy(out, s.data(), s.size());
        *bytes = out;
        *len = s.size();
        return 0;
    } catch (...) {
        set_err(err, errlen, "subwords: out of memory serializing the piece model");
        return -1;
    }
}

extern "C" char *s2s_subword_to_text(const s2s_subword *sw, char *err, size_t errlen)
{
    try {
        std::string s = sw->sp.serialized_model_proto();
        char head[64];
        std::snprintf(head, sizeof head, "%s%08x:%zu:", TEXT_PREFIX,
                      (unsigned)crc_of(s.data(), s.size()), s.size());
        char *out = dup_string(head + base64_encode(s));
        if (!out) throw std::bad_alloc();
        return out;
    } catch (...) {
        set_err(err, errlen, "subwords: out of memory writing the piece model");
        return nullptr;
    }
}

extern "C" s2s_subword *s2s_subword_from_text(const char *text, const char *label, char *err,
                                              size_t errlen)
{
    if (!label) label = "piece model";
    try {
        size_t plen = sizeof TEXT_PREFIX - 1;
        if (!text || std::strncmp(text, TEXT_PREFIX, plen) != 0) {
            set_err(err, errlen, "%s: piece model does not start with '%s'", label, TEXT_PREFIX);
            return nullptr;
        }
        const char *p = text + plen;
        char *end;
        // 8 hex digits, ':', decimal length, ':'
        for (int i = 0; i < 8; i++)
            if (!std::isxdigit((unsigned char)p[i])) p = nullptr, i = 8;
        unsigned long crc = p && p[8] == ':' ? std::strtoul(p, &end, 16) : 0;
        if (!p || p[8] != ':' || end != p + 8 || !std::isdigit((unsigned char)p[9])) {
            set_err(err, errlen, "%s: piece model header is not 'spm1:CRC32:LENGTH:'", label);
            return nullptr;
        }
        errno = 0;
        unsigned long long len = std::strtoull(p + 9, &end, 10);
        if (errno || *end != ':' || len > (1ull << 31)) {
            set_err(err, errlen, "%s: piece model length is not a number below 2^31", label);
            return nullptr;
        }
        const char *b64 = end + 1;
        size_t b64len = std::strlen(b64);
        std::string bytes;
        if (!base64_decode(b64, b64len, &bytes)) {
            set_err(err, errlen, "%s: piece model is not valid base64", label);
            return nullptr;
        }
        if (bytes.size() != len) {
            set_err(err, errlen, "%s: piece model is %zu bytes, header says %llu (truncated?)",
                    label, bytes.size(), len);
            return nullptr;
        }
        if (crc_of(bytes.data(), bytes.size()) != (uint32_t)crc) {
            set_err(err, errlen, "%s: piece model is damaged (crc32 %08x, header says %08lx)",
                    label, (unsigned)crc_of(bytes.data(), bytes.size()), crc);
            return nullptr;
        }
        return load_checked(bytes, label, err, errlen);
    } catch (const std::bad_alloc &) {
        set_err(err, errlen, "%s: out of memory reading the piece model", label);
    } catch (const std::exception &e) {
        set_err(err, errlen, "%s: piece model refused: %s", label, e.what());
    } catch (...) {
        set_err(err, errlen, "%s: piece model refused (unknown error)", label);
    }
    return nullptr;
}

extern "C" void s2s_subword_free(s2s_subword *sw) { delete sw; }

extern "C" int s2s_subword_size(const s2s_subword *sw) { return sw->sp.GetPieceSize(); }

extern "C" int s2s_subword_check_size(const s2s_subword *sw, int expected, const char *label,
                                      char *err, size_t errlen)
{
    int n = sw->sp.GetPieceSize();
    if (n == expected) return 0;
    set_err(err, errlen, "%s: piece model has %d pieces but the network expects %d",
            label ? label : "piece model", n, expected);
    return -1;
}

extern "C" const char *s2s_subword_piece(const s2s_subword *sw, int id)
{
    if (id < 0 || id >= sw->sp.GetPieceSize()) return nullptr;
    try {
        return sw->sp.IdToPiece(id).c_str();
    } catch (...) {
        return nullptr;
    }
}

extern "C" int s2s_subword_id(const s2s_subword *sw, const char *piece)
{
    try {
        int id = sw->sp.PieceToId(piece);
        // PieceToId answers unk_id for an unknown piece: tell the two apart
        if (id == sw->sp.unk_id() && sw->sp.IdToPiece(id) != piece) return -1;
        return id;
    } catch (...) {
        return -1;
    }
}

extern "C" int s2s_subword_encode(const s2s_subword *sw, const char *text, int *ids, int max,
                                  char *err, size_t errlen)
{
    try {
        std::vector<int> v;
        auto st = sw->sp.Encode(text, &v);
        if (!st.ok()) {
            set_err(err, errlen, "subwords: cannot encode text: %s", st.ToString().c_str());
            return -1;
        }
        if (v.size() > (size_t)INT32_MAX) throw std::bad_alloc();
        for (size_t i = 0; i < v.size() && (int)i < max; i++) ids[i] = v[i];
        return (int)v.size();
    } catch (...) {
        set_err(err, errlen, "subwords: out of memory encoding text");
        return -1;
    }
}

extern "C" char *s2s_subword_encode_pieces(const s2s_subword *sw, const char *text, char *err,
                                           size_t errlen)
{
    try {
        std::vector<std::string> v;
        auto st = sw->sp.Encode(text, &v);
        if (!st.ok()) {
            set_err(err, errlen, "subwords: cannot encode text: %s", st.ToString().c_str());
            return nullptr;
        }
        std::string joined;
        for (size_t i = 0; i < v.size(); i++) {
            if (i) joined += ' ';
            joined += v[i];
        }
        char *out = dup_string(joined);
        if (!out) throw std::bad_alloc();
        return out;
    } catch (...) {
        set_err(err, errlen, "subwords: out of memory encoding text");
        return nullptr;
    }
}

extern "C" char *s2s_subword_decode(const s2s_subword *sw, const int *ids, int n, char *err,
                                    size_t errlen)
{
    try {
        int size = sw->sp.GetPieceSize();
        std::vector<int> v;
        v.reserve(n > 0 ? (size_t)n : 0);
        for (int i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= size) {
                set_err(err, errlen, "subwords: id %d at %d is not a piece (model has %d)",
                        ids[i], i, size);
                return nullptr;
            }
            v.push_back(ids[i]);
        }
        std::string text;
        auto st = sw->sp.Decode(v, &text);
        if (!st.ok()) {
            set_err(err, errlen, "subwords: cannot decode: %s", st.ToString().c_str());
            return nullptr;
        }
        char *out = dup_string(text);
        if (!out) throw std::bad_alloc();
        return out;
    } catch (...) {
        set_err(err, errlen, "subwords: out of memory decoding");
        return nullptr;
    }
}
