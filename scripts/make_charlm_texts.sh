#!/usr/bin/env bash
# Texts of different sizes and scripts for choosing charlm's defaults
# (issue 16; scripts/charlm_defaults.sh), made from Debian packages only:
#
#   scripts/make_charlm_texts.sh [OUT_DIR]     (default: out/charlm-texts)
#
#   ko-faq.txt       the Debian FAQ in Korean (debian-faq-ko, its .txt as
#                    shipped): 124,573 characters, 716 symbols; the text of
#                    issue 16's report
#   zh-faq.txt       the Debian FAQ in Simplified Chinese (debian-faq-zh-cn):
#                    ~88k characters, ~1100 symbols (small and wide)
#   ru-faq.txt       the Debian FAQ in Russian (debian-faq-ru): ~184k, Cyrillic
#   en-kjv-100k.txt  the first ~100k characters of charlm's default corpus,
#                    the King James Bible (bible-kjv: `bible 'gen1:1-rev22:21'`)
#   en-kjv-1m.txt    its first ~1M characters
#
# The KJV pieces end at the last line end before the size. Prints each
# file's characters and vocabulary. apt-get installs what is missing (root).
set -euo pipefail
out="${1:-out/charlm-texts}"
mkdir -p "$out"
need=""
for p in debian-faq-ko debian-faq-zh-cn debian-faq-ru bible-kjv; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
    echo "installing:$need" >&2
    # shellcheck disable=SC2086  # a list of names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >/dev/null
fi
faq=/usr/share/doc/debian/FAQ
zcat "$faq/debian-faq.ko.txt.gz" > "$out/ko-faq.txt"
zcat "$faq/debian-faq.zh-cn.txt.gz" > "$out/zh-faq.txt"
zcat "$faq/debian-faq.ru.txt.gz" > "$out/ru-faq.txt"
bible 'gen1:1-rev22:21' > "$out/kjv.tmp"
python3 - "$out" <<'EOF'
import os, sys
out = sys.argv[1]
with open(os.path.join(out, "kjv.tmp"), encoding="utf-8", newline="") as f:
    kjv = f.read()
for name, size in (("en-kjv-100k.txt", 100_000), ("en-kjv-1m.txt", 1_000_000)):
    piece = kjv[:kjv.rindex("\n", 0, size) + 1]
    with open(os.path.join(out, name), "w", encoding="utf-8", newline="") as f:
        f.write(piece)
os.remove(os.path.join(out, "kjv.tmp"))
for name in sorted(os.listdir(out)):
    if name.endswith(".txt"):
        with open(os.path.join(out, name), encoding="utf-8-sig", newline="") as f:
            t = f.read()
        print(f"{os.path.join(out, name)}: {len(t)} characters, vocabulary {len(set(t))}")
EOF
