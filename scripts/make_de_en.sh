#!/usr/bin/env bash
# Builds a German->English sentence-pair corpus for examples/seq2seq from
# Debian's trans-de-en (Frank Richter's TU Chemnitz dictionary, GPL-2+):
# the whole-sentence usage examples of its entries, as two TSV files that
# `seq2seq --train/--test` read (UTF-8, "german<TAB>english" per line).
#
#   scripts/make_de_en.sh [OUT_DIR]     (default: de-en)
#   -> OUT_DIR/train.tsv, OUT_DIR/test.tsv; prints the counts
#
# The dictionary's line format is "german | german ... :: english | english
# ...": the '|'-separated parts of both sides correspond one to one, and the
# usage examples are parts that are whole sentences. A pair is kept when:
#  - both sides have the same number of parts (otherwise the alignment is
#    unknown and the line is skipped);
#  - both parts are sentences: start with an upper-case letter, a digit or a
#    quote, end with . ! ? (a closing quote may follow), have >= 3 words;
#  - they hold no dictionary placeholders (jdn./etw./sb./sth. and the like:
#    a pattern, not a sentence) and no TAB.
# Cleaning: register/region labels in brackets ("[coll.]", "[Br.]") and
# grammar labels in braces ("{adv}") are removed; where one part lists
# alternative sentences separated by ';' ("Er gilt als reich.; Er soll reich
# sein.", or "So geht's! / Typisch!"), the first alternative of each side is
# kept, and so is the first of alternative words ("wenig/keine Ähnlichkeit",
# "anfangen / angehen"); spaces are squeezed.
# Exact duplicate pairs are kept once.
#
# Split (fixed, independent of file order and of the package version's other
# lines): a pair goes to test.tsv when the first 32 bits of MD5(german side)
# modulo 100 are below 5 (about 5 %), else to train.tsv. Splitting on the
# source side keeps every translation of one German sentence on one side.
set -euo pipefail
src=/usr/share/trans/de-en
out="${1:-de-en}"
if [ ! -r "$src" ]; then
    echo "make_de_en: $src not found: install the Debian package trans-de-en" >&2
    exit 1
fi
mkdir -p "$out"
perl -CSD -Mutf8 -MDigest::MD5=md5 -e '
use strict; use warnings;
my ($train, $test) = @ARGV;
open(my $tr, ">:encoding(UTF-8)", $train) or die "make_de_en: $train: $!\n";
open(my $te, ">:encoding(UTF-8)", $test) or die "make_de_en: $test: $!\n";
my %seen;
my ($lines, $misaligned, $kept, $dups, $ntr, $nte, $wde, $wen) = (0, 0, 0, 0, 0, 0, 0, 0);
my $placeholder = qr/\b(?:jd[mnrs]|jds|etw|sb|sth|so)\.|\bjmd|~|\.\.\.|…/;
sub clean {
    my ($s) = @_;
    $s =~ s/\s*\[[^\]]*\]//g;
    $s =~ s/\s*\{[^}]*\}//g;
    $s =~ s/(?<=[.!?])\s*;\s.*$//;   # first of several alternative sentences
    $s =~ s/(?<=[.!?"“”»«\x{27}’])\s+\/\s.*$//;   # the same, separated by " / "
    $s =~ s/(\p{L}+)(?: ?\/ ?\p{L}+)+/$1/g;   # first of alternative words: "wenig/keine"
    $s =~ s/\s+/ /g; $s =~ s/^ | $//g;
    return $s;
}
sub sentence {
    my ($s) = @_;
    return 0 if $s =~ /\t/ || $s =~ $placeholder;
    return 0 unless $s =~ /^["„“‚‘«»\x{27}\p{Lu}\p{N}]/ && $s =~ /[.!?]["“”‘’»«\x{27}]?$/;
    my @w = split / /, $s;
    return @w >= 3;
}
while (my $line = <STDIN>) {
    next if $line =~ /^#/;
    chomp $line; $lines++;
    my @sides = split / :: /, $line;
    next unless @sides == 2;
    my @de = split / \| /, $sides[0];
    my @en = split / \| /, $sides[1];
    if (@de != @en) { $misaligned++; next; }
    for my $i (0 .. $#de) {
        my ($d, $e) = (clean($de[$i]), clean($en[$i]));
        next unless sentence($d) && sentence($e);
        if ($seen{"$d\t$e"}++) { $dups++; next; }
        $kept++;
        my $bucket = unpack("N", md5(do { my $b = $d; utf8::encode($b); $b })) % 100;
        if ($bucket < 5) { print $te "$d\t$e\n"; $nte++; }
        else { print $tr "$d\t$e\n"; $ntr++; }
        $wde += scalar(split / /, $d); $wen += scalar(split / /, $e);
    }
}
printf "make_de_en: %d dictionary lines, %d skipped (parts do not align), %d duplicate pairs dropped\n",
    $lines, $misaligned, $dups;
printf "make_de_en: %d sentence pairs: %d in %s, %d in %s\n", $kept, $ntr, $train, $nte, $test;
printf "make_de_en: mean words per sentence: German %.1f, English %.1f\n",
    $kept ? $wde / $kept : 0, $kept ? $wen / $kept : 0;
' "$out/train.tsv" "$out/test.tsv" < "$src"
