#!/usr/bin/env python3
"""Runs every row of the README's "Bad input" table against the built programs.

    bad_inputs.py [--markdown] --charlm EXE --seq2seq EXE --rowseq EXE

For each row: the program must exit with the expected code (2: usage, 1:
data), never by a signal (a crash or a sanitizer abort) or a hang (60 s);
the last line of stderr must be "<program>: <message>" naming the file,
line or field (every expected fragment appears in it); and every checkpoint
that exists before the run (the one given with --save, the fixtures given
to --load and --resume) must be byte-for-byte unchanged after it. Rows whose program is not built are skipped (said so).

--markdown prints the table (with the real messages, temporary paths
shortened to file names) for the README instead of a pass/fail report.
"""
import gzip
import contextlib
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

# (program, what is wrong, arguments, expected exit code, fragments the
# message must contain). {d} is the fixture folder; every run also gets
# --save {d}/keep.ckpt (an existing checkpoint that must survive) unless the
# row sets --save itself. Small sizes everywhere, so that a program that
# wrongly accepts the input ends quickly and fails on its exit code.
CH = ["--hidden", "8", "--embed", "4", "--batch", "2", "--seq-len", "4", "--steps", "2"]
S2S = ["--hidden", "8", "--embed", "4", "--pairs", "200", "--test-pairs", "20", "--epochs", "1",
       "--seconds", "20"]
RS = ["--hidden", "8", "--epochs", "1"]

# in a row's environment dict: the file its stdout is written to (a row
# about lost output sends it to /dev/full), taken out before the run
STDOUT_KEY = "stdout>"
ROWS = [
    # ---- command line (exit 2)
    ("charlm", "unknown flag", ["--bogus"] + CH, 2, ["--bogus", "unknown flag"]),
    ("seq2seq", "flag without its value", S2S + ["--hidden"], 2, ["--hidden", "missing value"]),
    ("rowseq", "non-numeric number", ["--batch", "12x"] + RS, 2, ["--batch", "'12x'"]),
    ("charlm", "number out of range", CH + ["--hidden", "0"], 2, ["--hidden", "'0'", "range"]),
    ("rowseq", "fraction out of range", RS + ["--dropout", "1.5"], 2, ["--dropout", "1.5"]),
    ("seq2seq", "NaN given as a number", S2S + ["--lr", "nan"], 2, ["--lr", "nan"]),
    ("seq2seq", "integer overflow", S2S + ["--batch", "99999999999999999999"], 2, ["--batch"]),
    ("charlm", "value not among the choices", CH + ["--cell", "foo"], 2, ["--cell", "'foo'"]),
    ("charlm", "empty value (--flag=)", CH + ["--hidden="], 2, ["--hidden"]),
    ("rowseq", "stray positional argument", RS + ["extra"], 2, ["'extra'"]),
    ("charlm", "text too short for --batch x --seq-len", ["--text", "{d}/tiny.txt", "--steps", "2",
     "--batch", "64", "--seq-len", "64"], 2, ["--batch", "--seq-len"]),
    ("charlm", "--prime with a character outside the vocabulary",
     ["--text", "{d}/tiny.txt", "--load", "{d}/ok.ckpt", "--steps", "0", "--sample", "5",
      "--prime", "QQ"], 2,
     ["--prime", "U+0051"]),
    # ---- files: text (exit 1)
    ("charlm", "missing file", CH + ["--text", "{d}/absent.txt"], 1,
     ["absent.txt", "No such file"]),
    ("charlm", "directory instead of a file", CH + ["--text", "{d}"], 1, ["{d}", "directory"]),
    ("charlm", "empty file", CH + ["--text", "{d}/empty.txt"], 1, ["empty.txt", "empty"]),
    ("charlm", "invalid UTF-8", CH + ["--text", "{d}/bad_utf8.txt"], 1,
     ["bad_utf8.txt:2", "invalid UTF-8", "0xC3"]),
    ("charlm", "--log into a missing folder", CH + ["--text", "{d}/tiny.txt", "--log",
     "{d}/no/such/log.csv"], 1, ["--log", "log.csv", "no/such", "No such file"]),
    ("charlm", "text over 1 GiB (a sparse file), read whole into memory",
     CH + ["--text", "{d}/huge.txt"], 1, ["huge.txt", "more than 1073741824 bytes"]),
    ("charlm", "text whose characters and ids alone exceed the memory (refused before it is "
     "decoded)", CH + ["--text", "{d}/tiny.txt"], 1, ["tiny.txt", "holding this text takes",
     "is available (TG_MAX_MEMORY)", "train on a shorter text"], {"TG_MAX_MEMORY": "100"}),
    # ---- files: sentence pairs
    ("seq2seq", "TSV line without a TAB", S2S + ["--train", "{d}/no_tab.tsv"], 1,
     ["no_tab.tsv:2", "TAB"]),
    ("seq2seq", "TSV line with invalid UTF-8", S2S + ["--train", "{d}/bad_utf8.tsv"], 1,
     ["bad_utf8.tsv:2", "UTF-8"]),
    ("seq2seq", "TSV pair with an empty side", S2S + ["--train", "{d}/empty_side.tsv"], 1,
     ["empty_side.tsv:1", "empty"]),
    ("seq2seq", "missing --test file", S2S + ["--train", "{d}/good.tsv", "--test",
     "{d}/absent.tsv"], 1, ["absent.tsv"]),
    ("seq2seq", "TSV pairs past their share of the memory (refused at the line that crosses "
     "it, not killed)", S2S + ["--train", "{d}/good.tsv", "--subwords", "0"], 1,
     ["good.tsv:1", "holding the pairs read up to this line takes", "half of the 1.0 KiB available",
      "(TG_MAX_MEMORY)", "train on a shorter corpus"], {"TG_MAX_MEMORY": "1K"}),
    ("seq2seq", "learning pieces from more text than the memory holds (refused before "
     "SentencePiece takes it)", ["--train", "{d}/long_pairs.tsv", "--test", "{d}/long_pairs.tsv",
     "--subwords", "100", "--hidden", "8", "--embed", "4", "--steps", "1"], 1,
     ["learning the pieces from 40 pairs takes", "SentencePiece's trainer", "(TG_MAX_MEMORY)",
      "lower --subword-sample"], {"TG_MAX_MEMORY": "256K"}),
    ("seq2seq", "directory as --train", S2S + ["--train", "{d}"], 1, ["{d}"]),
    ("seq2seq", "a line that never ends (/dev/zero as --train)", S2S + ["--train", "/dev/zero"],
     1, ["/dev/zero:1", "more than 4194304 bytes"]),
    # ---- files: IDX images
    ("rowseq", "IDX with a wrong magic number", RS + ["--data", "{d}/idx_magic"], 1,
     ["train-images-idx3-ubyte", "magic"]),
    ("rowseq", "IDX truncated", RS + ["--data", "{d}/idx_trunc"], 1,
     ["train-images-idx3-ubyte", "truncated"]),
    ("rowseq", "gzip IDX cut short", RS + ["--data", "{d}/idx_gz"], 1,
     ["train-images-idx3-ubyte.gz", "gzip"]),
    ("rowseq", "label out of range", RS + ["--data", "{d}/idx_label"], 1,
     ["train-labels-idx1-ubyte", "label 12", "index 7"]),
    ("rowseq", "images and labels disagree in count", RS + ["--data", "{d}/idx_count"], 1,
     ["39", "40"]),
    ("rowseq", "empty IDX file", RS + ["--data", "{d}/idx_empty"], 1,
     ["train-images-idx3-ubyte", "empty"]),
    ("rowseq", "IDX file missing from --data", RS + ["--data", "{d}/idx_missing"], 1,
     ["t10k-labels-idx1-ubyte"]),
    # ---- files: checkpoints
    ("charlm", "checkpoint truncated", ["--text", "{d}/tiny.txt", "--load", "{d}/trunc.ckpt"] + CH,
     1, ["trunc.ckpt"]),
    ("charlm", "header length beyond the file", ["--text", "{d}/tiny.txt", "--load",
     "{d}/header_len.ckpt"] + CH, 1, ["header_len.ckpt", "header length"]),
    ("charlm", "not a checkpoint at all", ["--text", "{d}/tiny.txt", "--load",
     "{d}/tiny.txt"] + CH, 1, ["tiny.txt", "header length"]),
    ("charlm", "wrong dtype", ["--text", "{d}/tiny.txt", "--load", "{d}/dtype.ckpt"] + CH, 1,
     ["dtype.ckpt", "head.bias", "I32"]),
    ("charlm", "tensor with the shape of another model", ["--text", "{d}/tiny.txt", "--load",
     "{d}/shape.ckpt"] + CH, 1, ["shape.ckpt", "head.weight", "shape"]),
    ("charlm", "config says another size than the tensors", ["--text", "{d}/tiny.txt", "--load",
     "{d}/config.ckpt", "--steps", "2", "--batch", "2", "--seq-len", "4"], 1,
     ["config.ckpt", "shape"]),
    ("charlm", "config says a model far larger than its tensors (refused before it is built)",
     ["--text", "{d}/tiny.txt", "--load", "{d}/config_big.ckpt"] + CH, 1,
     ["config_big.ckpt", "hidden 2048", "its tensors hold"], {"TG_MAX_MEMORY": "64G"}),
    ("charlm", "config says a model larger than memory with its gradients (refused before it "
     "is built)", ["--text", "{d}/tiny.txt", "--load", "{d}/config_huge.ckpt"] + CH, 1,
     ["config_huge.ckpt", "hidden 65536", "with its gradients", "GiB available",
      "TG_MAX_MEMORY"], {"TG_MAX_MEMORY": "4G"}),
    ("charlm", "a sample-only run whose stdout cannot be written (it said nothing, exit 0)",
     ["--load", "{d}/ok.ckpt", "--sample", "20", "--prime", "a"], 1,
     ["stdout: write error: output was lost"], {STDOUT_KEY: "/dev/full"}),
    ("charlm", "--load of a PyTorch state_dict (what --export-torch writes)",
     ["--text", "{d}/tiny.txt", "--load", "{d}/ok.torch.st"] + CH, 1,
     ["ok.torch.st", "PyTorch CharRNN state_dict", "give it to --import-torch"]),
    ("charlm", "--import-torch of a tapegrad model (what --save writes)",
     ["--text", "{d}/tiny.txt", "--import-torch", "{d}/ok.ckpt"] + CH, 1,
     ["ok.ckpt", "tapegrad's names", "give it to --load"]),
    ("rowseq", "--load of a PyTorch state_dict (what --export-torch writes)",
     RS + ["--data", "{d}/idx_ok", "--load", "{d}/r.torch.st"], 1,
     ["r.torch.st", "PyTorch RowRNN state_dict", "give it to --import-torch"]),
    ("rowseq", "--import-torch of a training checkpoint",
     RS + ["--data", "{d}/idx_ok", "--import-torch", "{d}/r.tck"], 1,
     ["r.tck", "a training checkpoint", "--resume"]),
    ("rowseq", "--layers the loaded model contradicts (helper-42: it was ignored)",
     RS + ["--data", "{d}/idx_ok", "--load", "{d}/r.tck", "--layers", "3"], 2,
     ["--layers 3 does not match the model", "r.tck", "layers=1"]),
    ("rowseq", "--cell the imported model contradicts",
     RS + ["--data", "{d}/idx_ok", "--import-torch", "{d}/r.torch.st", "--cell", "rnn"], 2,
     ["--cell rnn does not match the model", "r.torch.st", "cell=lstm"]),
    ("charlm", "flag contradicts the loaded checkpoint", ["--text", "{d}/tiny.txt", "--load",
     "{d}/ok.ckpt", "--hidden", "16", "--steps", "2", "--batch", "2", "--seq-len", "4"], 2,
     ["--hidden", "ok.ckpt"]),
    ("charlm", "vocabulary mismatch (text has characters the checkpoint lacks)",
     ["--text", "{d}/other.txt", "--load", "{d}/ok.ckpt"] + CH, 1,
     ["other.txt:1", "vocabulary", "ok.ckpt"]),
    ("charlm", "malformed vocabulary in the metadata", ["--text", "{d}/tiny.txt", "--load",
     "{d}/vocab.ckpt"] + CH, 1, ["vocab.ckpt", "vocab"]),
    ("charlm", "NaN in a loaded weight", ["--text", "{d}/tiny.txt", "--load", "{d}/nan.ckpt"] + CH,
     1, ["nan.ckpt", "rnn.l0.weight_hh", "NaN"]),
    ("charlm", "damaged weights (one flipped bit in the data)", ["--text", "{d}/tiny.txt",
     "--load", "{d}/flip.ckpt"] + CH, 1, ["flip.ckpt", "checksum", "damaged"]),
    ("charlm", "weights whose loss overflows: non-finite loss at step 1",
     ["--text", "{d}/tiny.txt", "--load", "{d}/huge.ckpt"] + CH, 1, ["step 1", "stopping"]),
    ("rowseq", "checkpoint of another program", RS + ["--data", "{d}/idx_ok", "--load",
     "{d}/ok.ckpt"], 1, ["ok.ckpt", "rowseq."]),
    ("seq2seq", "checkpoint of another program", S2S + ["--load", "{d}/ok.ckpt"], 1,
     ["ok.ckpt", "s2s."]),
    ("seq2seq", "damaged piece model in a saved model", S2S + ["--load", "{d}/sub_crc.tg"], 1,
     ["sub_crc.tg", "s2s.src_pieces", "damaged"]),
    ("seq2seq", "piece model of the other side in a saved model", S2S + ["--load",
     "{d}/sub_swap.tg"], 1, ["sub_swap.tg", "s2s.src_pieces", "network expects"]),
    ("seq2seq", "damaged piece model in a training checkpoint", ["--resume", "{d}/sub_crc.tck",
     "--epochs", "2"], 1, ["sub_crc.tck", "src-pieces", "damaged"]),
    ("charlm", "--save into a missing folder", ["--text", "{d}/tiny.txt", "--save",
     "{d}/no/such/out.ckpt"] + CH, 1, ["--save", "out.ckpt", "no/such", "No such file"]),
    # ---- training checkpoints (--checkpoint / --resume)
    ("charlm", "--resume of a missing file", ["--resume", "{d}/absent.tck", "--steps", "6"], 1,
     ["absent.tck"]),
    ("charlm", "--resume of a model-only --save file", ["--resume", "{d}/ok.ckpt", "--steps", "6"],
     1, ["ok.ckpt", "not a training checkpoint"]),
    ("charlm", "--resume of a truncated training checkpoint", ["--resume", "{d}/trunc.tck",
     "--steps", "6"], 1, ["trunc.tck"]),
    ("charlm", "--resume of a training checkpoint with bytes appended", ["--resume",
     "{d}/tail.tck", "--steps", "6"], 1, ["tail.tck", "bytes follow the last tensor", "appended"]),
    ("charlm", "--resume of a training checkpoint whose step count was edited (its header "
     "checksum kept)", ["--resume", "{d}/stepedit.tck", "--steps", "6"], 1,
     ["stepedit.tck", "'tapegrad.header_crc32' says", "damaged"]),
    ("charlm", "--resume with an edited text", ["--resume", "{d}/run.tck", "--text",
     "{d}/changed.txt", "--steps", "6"], 1, ["run.tck", "'text'"]),
    ("charlm", "--resume with a text of another vocabulary", ["--resume", "{d}/run.tck",
     "--text", "{d}/other.txt", "--steps", "6"], 1, ["run.tck", "'vocab'"]),
    ("charlm", "--resume with another model size", ["--resume", "{d}/run.tck", "--text",
     "{d}/tiny.txt", "--hidden", "16", "--steps", "6"], 1, ["run.tck", "'hidden'", "16"]),
    ("charlm", "--checkpoint over an existing run without --resume", ["--text", "{d}/tiny.txt",
     "--checkpoint", "{d}/run.tck"] + CH, 1, ["run.tck", "--resume"]),
    ("charlm", "--checkpoint into a missing folder", ["--text", "{d}/tiny.txt", "--checkpoint",
     "{d}/no/such/run.tck"] + CH, 1, ["no/such"]),
    ("charlm", "--checkpoint naming a directory", ["--text", "{d}/tiny.txt", "--checkpoint",
     "{d}"] + CH, 1, ["{d}", "directory"]),
    ("seq2seq", "--resume of another program's training checkpoint", ["--resume",
     "{d}/run.tck", "--epochs", "2"], 1, ["run.tck", "'charlm'", "'seq2seq'"]),
    ("seq2seq", "--resume of a truncated training checkpoint", ["--resume", "{d}/s_trunc.tck",
     "--epochs", "2"], 1, ["s_trunc.tck"]),
    ("seq2seq", "--resume with another corpus size", ["--resume", "{d}/s.tck", "--epochs", "2",
     "--pairs", "300"], 1, ["s.tck", "'pairs'", "300"]),
    ("seq2seq", "--resume with another model size", ["--resume", "{d}/s.tck", "--epochs", "2",
     "--hidden", "16"], 1, ["s.tck", "'hidden'", "16"]),
    ("seq2seq", "--resume together with --load", ["--resume", "{d}/s.tck", "--load",
     "{d}/ok.ckpt"], 2, ["--resume", "--load"]),
    ("seq2seq", "--checkpoint over an existing run without --resume", S2S + ["--checkpoint",
     "{d}/s.tck"], 1, ["s.tck", "--resume"]),
    ("seq2seq", "--every without --checkpoint", S2S + ["--every", "3"], 2,
     ["--every", "--checkpoint"]),
    ("rowseq", "--resume of a model-only --save file", ["--resume", "{d}/ok.ckpt", "--data",
     "{d}/idx_ok"], 1, ["ok.ckpt", "not a training checkpoint"]),
    ("rowseq", "--resume of another program's training checkpoint", ["--resume", "{d}/s.tck",
     "--data", "{d}/idx_ok"], 1, ["s.tck", "'seq2seq'", "'rowseq'"]),
    ("rowseq", "--resume with other training images", ["--resume", "{d}/r.tck", "--data",
     "{d}/idx_other", "--epochs", "2"], 1, ["r.tck", "train-data"]),
    ("rowseq", "--checkpoint into a missing folder", RS + ["--data", "{d}/idx_ok", "--checkpoint",
     "{d}/no/such/r.tck"], 1, ["no/such"]),
    ("rowseq", "--checkpoint over an existing run without --resume", RS + ["--data",
     "{d}/idx_ok", "--checkpoint", "{d}/r.tck"], 1, ["r.tck", "--resume"]),
    ("seq2seq", "--save into a missing folder", S2S + ["--save", "{d}/no/such/out.ckpt"], 1,
     ["--save", "out.ckpt", "no/such", "No such file"]),
    ("rowseq", "--save into a missing folder", RS + ["--data", "{d}/idx_ok", "--save",
     "{d}/no/such/out.ckpt"], 1, ["--save", "out.ckpt", "no/such", "No such file"]),
    # ---- output paths: checked at start-up, before any data is read or trained on
    ("seq2seq", "--log into a missing folder", S2S + ["--log", "{d}/no/such/log.csv"], 1,
     ["--log", "log.csv", "no/such", "No such file"]),
    ("rowseq", "--log into a missing folder", RS + ["--data", "{d}/idx_ok", "--log",
     "{d}/no/such/log.csv"], 1, ["--log", "log.csv", "no/such", "No such file"]),
    ("seq2seq", "--checkpoint into a missing folder", S2S + ["--checkpoint",
     "{d}/no/such/s.tck"], 1, ["--checkpoint", "no/such", "No such file"]),
    ("charlm", "--save naming a directory", ["--text", "{d}/tiny.txt", "--save", "{d}"] + CH, 1,
     ["--save", "{d}", "is a directory"]),
    ("charlm", "--save onto a named pipe (it would be replaced)", ["--text", "{d}/tiny.txt",
     "--save", "{d}/pipe"] + CH, 1, ["--save", "pipe", "not a regular file"]),
    # ---- --resume without the data flags takes the run's files from the checkpoint
    ("charlm", "--resume without --text: the run's text is gone", ["--resume", "{d}/gone.tck",
     "--steps", "6"], 1, ["gone.tck", "the run's text", "gone.txt", "No such file", "--text"]),
    ("charlm", "--resume without --text: the run's text has another vocabulary now",
     ["--resume", "{d}/edited.tck", "--steps", "6"], 1,
     ["edited.tck", "edited.txt", "changed", "vocabulary", "--text"]),
    ("seq2seq", "--resume without --train: the run's pair file is gone", ["--resume",
     "{d}/s_gone.tck", "--epochs", "2"], 1,
     ["s_gone.tck", "training pairs", "gone.tsv", "No such file", "--train"]),
    ("rowseq", "--resume without --data: the run's data folder is gone", ["--resume",
     "{d}/r_gone.tck", "--epochs", "2"], 1, ["r_gone.tck", "the run's data", "idx_gone",
     "--data"]),
    # ---- PyTorch interchange (--import-torch, examples/common/torch_io.h)
    ("charlm", "--import-torch of a truncated file", ["--text", "{d}/tiny.txt", "--import-torch",
     "{d}/trunc.torch.st"] + CH, 1, ["--import-torch", "trunc.torch.st", "data_offsets"]),
    ("charlm", "--import-torch of rowseq's RowRNN", ["--text", "{d}/tiny.txt", "--import-torch",
     "{d}/r.torch.st"] + CH, 1, ["--import-torch", "r.torch.st", "not a CharRNN"]),
    ("charlm", "--import-torch with a flag its shapes contradict", ["--text", "{d}/tiny.txt",
     "--import-torch", "{d}/ok.torch.st", "--steps", "2", "--batch", "2", "--seq-len", "4",
     "--hidden", "16"], 2, ["--hidden 16", "ok.torch.st"]),
    ("charlm", "--import-torch together with --load", ["--import-torch", "{d}/ok.torch.st",
     "--load", "{d}/ok.ckpt"] + CH, 2, ["--import-torch", "--load"]),
    ("rowseq", "--import-torch of charlm's CharRNN", RS + ["--data", "{d}/idx_ok",
     "--import-torch", "{d}/ok.torch.st"], 1, ["--import-torch", "ok.torch.st", "CharRNN"]),
    ("rowseq", "--import-torch of a tensor with the wrong shape", RS + ["--data", "{d}/idx_ok",
     "--import-torch", "{d}/shape.torch.st"], 1, ["--import-torch", "shape.torch.st",
     "tensor 'rnn.weight_ih_l0' has shape"]),
    ("rowseq", "--import-torch of a truncated file", RS + ["--data", "{d}/idx_ok",
     "--import-torch", "{d}/r_trunc.torch.st"], 1, ["--import-torch", "r_trunc.torch.st"]),
    ("charlm", "--export-torch of a cell without a PyTorch module", ["--text", "{d}/tiny.txt",
     "--cell", "mgu", "--export-torch", "{d}/m_out.st"] + CH, 2, ["--export-torch", "'mgu'"]),
    ("rowseq", "--export-torch of a cell without a PyTorch module", RS + ["--data",
     "{d}/idx_ok", "--cell", "mgu", "--export-torch", "{d}/m_out.st"], 2,
     ["--export-torch", "'mgu'"]),
    ("charlm", "--export-torch into a missing folder", ["--text", "{d}/tiny.txt",
     "--export-torch", "{d}/no/such/m.st"] + CH, 1, ["--export-torch", "no/such"]),
    # ---- sizes that do not fit: refused at start-up with both figures
    ("charlm", "a configuration larger than the memory", ["--text", "{d}/tiny.txt"] + CH, 1,
     ["this configuration needs", "step arenas", "is available (TG_MAX_MEMORY)",
      "lower --hidden"], {"TG_MAX_MEMORY": "1M"}),
    ("rowseq", "a configuration larger than the memory", RS + ["--data", "{d}/idx_ok"], 1,
     ["this configuration needs", "optimizer state", "is available (TG_MAX_MEMORY)",
      "lower --hidden"], {"TG_MAX_MEMORY": "2M"}),
    ("charlm", "1e9 parameters with Adam under a 16 GiB cap (refused before the model is built)",
     ["--text", "{d}/tiny.txt"] + CH + ["--layers", "8", "--hidden", "4096"], 1,
     ["this configuration needs", "step arenas not measured yet", "16.0 GiB is available",
      "lower --hidden"], {"TG_MAX_MEMORY": "16G"}),
    ("rowseq", "1e9 parameters with Adam under a 16 GiB cap (refused before the model is built)",
     RS + ["--data", "{d}/idx_ok", "--layers", "8", "--hidden", "4096"], 1,
     ["this configuration needs", "step arenas not measured yet", "16.0 GiB is available",
      "lower --hidden"], {"TG_MAX_MEMORY": "16G"}),
    ("seq2seq", "a configuration larger than the memory", S2S, 1,
     ["this configuration needs", "step arenas", "is available (TG_MAX_MEMORY)",
      "lower --hidden"], {"TG_MAX_MEMORY": "2M"}),
    ("seq2seq", "--hidden 8192 --embed 8192 under a 16 GiB cap (refused before the model is "
     "built)", ["--hidden", "8192", "--embed", "8192", "--steps", "1"], 1,
     ["this configuration needs", "step arenas not measured yet", "16.0 GiB is available",
      "lower --hidden"], {"TG_MAX_MEMORY": "16G"}),
    ("charlm", "malformed memory cap", ["--text", "{d}/tiny.txt"] + CH, 2,
     ["TG_MAX_MEMORY", "'lots'"], {"TG_MAX_MEMORY": "lots"}),
    ("charlm", "unknown kernel in TG_ISA (was an abort at the first product)",
     ["--text", "{d}/tiny.txt"] + CH, 2, ["TG_ISA", "'avx1024'", "auto, avx512, avx2, blas"],
     {"TG_ISA": "avx1024"}),
    # ---- seq2seq's PyTorch interchange (examples/seq2seq/torch_s2s.h)
    ("seq2seq", "--import-torch of a Seq2Seq tensor with the wrong shape", S2S + [
     "--import-torch", "{d}/s2s_shape.torch.st"], 1, ["--import-torch", "s2s_shape.torch.st",
     "'out.weight'", "expects"]),
    ("seq2seq", "--import-torch of a Seq2Seq file missing a tensor", S2S + ["--import-torch",
     "{d}/s2s_missing.torch.st"], 1, ["--import-torch", "s2s_missing.torch.st",
     "'decoder.weight_hh_l0'", "missing"]),
    ("seq2seq", "--import-torch of charlm's CharRNN", S2S + ["--import-torch",
     "{d}/ok.torch.st"], 1, ["--import-torch", "ok.torch.st", "CharRNN", "Seq2Seq"]),
    ("seq2seq", "--export-torch of a cell without a PyTorch module", S2S + ["--cell", "mgu",
     "--export-torch", "{d}/m_out.st"], 2, ["--export-torch", "'mgu'"]),
    ("seq2seq", "--import-torch whose metadata asks for a model larger than memory (refused "
     "before it is built)", S2S + ["--import-torch", "{d}/s2s_huge.torch.st"], 1,
     ["--import-torch", "s2s_huge.torch.st", "hidden 8192, layers 8", "GiB available",
      "TG_MAX_MEMORY"], {"TG_MAX_MEMORY": "4G"}),
    ("seq2seq", "--import-torch whose metadata describes a model far larger than its tensors "
     "(refused before it is built)", S2S + ["--import-torch", "{d}/s2s_floor.torch.st"], 1,
     ["--import-torch", "s2s_floor.torch.st", "hidden 2048", "its tensors hold"],
     {"TG_MAX_MEMORY": "64G"}),
    ("seq2seq", "--load of a PyTorch state_dict (what --export-torch writes)",
     S2S + ["--load", "{d}/s2s.torch.st"], 1,
     ["s2s.torch.st", "PyTorch Seq2Seq state_dict", "give it to --import-torch"]),
    ("seq2seq", "--import-torch of a training checkpoint (helper-44: it said 'not a Seq2Seq file')",
     S2S + ["--import-torch", "{d}/s.tck"], 1, ["s.tck", "a training checkpoint", "--resume"]),
    ("charlm", "--import-torch of a seq2seq export", ["--text", "{d}/tiny.txt", "--import-torch",
     "{d}/s2s.torch.st"] + CH, 1, ["s2s.torch.st", "a PyTorch Seq2Seq state_dict, not a CharRNN"]),
    ("charlm", "--import-torch whose metadata names the other module than its shapes make",
     ["--text", "{d}/tiny.txt", "--import-torch", "{d}/module.torch.st"] + CH, 1,
     ["module.torch.st", "says RowRNN", "has an embed.weight: a CharRNN"]),
    ("seq2seq", "--translate whose stdout cannot be written (it said nothing, exit 0)",
     ["--load", "{d}/sub.tg", "--translate", "Straße über Öl."], 1,
     ["stdout: write error: No space left on device"], {STDOUT_KEY: "/dev/full"}),
    ("seq2seq", "--load of another program's PyTorch state_dict",
     S2S + ["--load", "{d}/ok.torch.st"], 1,
     ["ok.torch.st", "PyTorch CharRNN state_dict, another program's model", "reads a Seq2Seq"]),
    ("seq2seq", "--export-torch onto the --import-torch file (named as given)",
     S2S + ["--import-torch", "{d}/s2s.torch.st", "--export-torch", "{d}/s2s.torch.st"], 2,
     ["--export-torch", "would overwrite --import-torch", "s2s.torch.st"]),
    ("seq2seq", "--import-torch with a --layers the model contradicts", S2S + ["--layers", "3",
     "--import-torch", "{d}/s2s.torch.st"], 2, ["--layers 3", "s2s.torch.st", "layers=1"]),
    ("seq2seq", "--subword-sample where no pieces are learned (the built-in corpus's words)",
     S2S + ["--subword-sample", "1000"], 2, ["--subword-sample", "pieces are learned",
     "--subwords 0"]),
    ("seq2seq", "--import-torch with a malformed dropout in its metadata", S2S + [
     "--import-torch", "{d}/s2s_dropout.torch.st"], 1, ["s2s_dropout.torch.st", "'s2s.dropout'",
     "'0.1abc'"]),
    ("seq2seq", "--import-torch with a dropout above --dropout's bound (0.96)", S2S + [
     "--import-torch", "{d}/s2s_drop96.torch.st"], 1, ["s2s_drop96.torch.st", "'s2s.dropout'",
     "'0.96'", "[0, 0.95]"]),
    ("seq2seq", "--import-torch of a state_dict without our checksums (as other tools write "
     "them) with bytes after its last tensor", S2S + ["--import-torch", "{d}/s2s_tail.torch.st"],
     1, ["s2s_tail.torch.st", "8 bytes follow the last tensor", "appended"]),
    ("seq2seq", "--import-torch with a width written with a leading space (' 8')", S2S + [
     "--import-torch", "{d}/s2s_space.torch.st"], 1, ["s2s_space.torch.st", "'s2s.hidden'",
     "not an unsigned integer"]),
    ("rowseq", "--data path too long for the file names built from it (refused, not cut short)",
     RS + ["--data", "{d}/" + "a" * 5000], 1, ["--data path is", "bytes long", "at most"]),
    # ---- one file for two roles: an output over an input or another output
    ("charlm", "--log naming the --resume checkpoint (appended to it: the checkpoint was "
     "damaged)", ["--resume", "{d}/run.tck", "--steps", "6", "--log", "{d}/run.tck"], 2,
     ["--log", "run.tck", "would overwrite --resume", "one file"]),
    ("rowseq", "--save naming the --resume checkpoint (replaced it by a model)", ["--resume",
     "{d}/r.tck", "--data", "{d}/idx_ok", "--save", "{d}/./r.tck"], 2,
     ["--save", "r.tck", "would overwrite --resume"]),
    ("seq2seq", "--attention-map naming the --load model (replaced it by an SVG)", ["--load",
     "{d}/ok.ckpt", "--attention-map", "{d}/ok.ckpt", "--translate", "hello"], 2,
     ["--attention-map", "ok.ckpt", "would overwrite --load"]),
    ("seq2seq", "--checkpoint and --export-torch naming one file", S2S + ["--checkpoint",
     "{d}/new.ck", "--export-torch", "{d}/./new.ck"], 2,
     ["--checkpoint", "--export-torch", "one output would overwrite the other"]),
    ("seq2seq", "--write-corpus with an empty folder name (wrote /train.tsv)", S2S + [
     "--write-corpus", ""], 2, ["--write-corpus", "empty value"]),
    ("seq2seq", "an empty file name (was ': No such file or directory', naming no flag)", [
     "--train", ""], 2, ["--train: empty value"]),
    ("rowseq", "--load naming a FIFO (open() waited for a writer forever)", RS + ["--data",
     "{d}/idx_ok", "--load", "{d}/pipe"], 1, ["pipe", "not a regular file"]),
    ("seq2seq", "a flag after the --translate sentences (was translated as text, not applied)",
     ["--load", "{d}/ok.ckpt", "--translate", "hello", "--beam", "5"], 2,
     ["--beam after 'hello'", "flags go before the arguments"]),
    ("seq2seq", "--subwords below SentencePiece's floor (was exit 1 after reading the data)",
     ["--train", "{d}/good.tsv", "--subwords", "1"], 2, ["--subwords 1", "expected 0 (words) or 8"]),
    ("seq2seq", "--lowercase against a --load'ed model that keeps case (was silently ignored)",
     ["--load", "{d}/sub.tg", "--lowercase", "--translate", "hello"], 2,
     ["--lowercase 1 does not match the model", "sub.tg", "lowercase=0"]),
    ("charlm", "--sample larger than the memory (was 'out of memory sampling', or killed)",
     ["--load", "{d}/run.tck", "--sample", "1000000", "--prime", "h"], 1,
     ["sampling 1000000 characters (--sample) takes 3.8 MiB", "(TG_MAX_MEMORY)", "lower --sample"],
     {"TG_MAX_MEMORY": "1M"}),
    ("rowseq", "IDX images larger than the memory (refused before they are read, not killed)",
     RS + ["--data", "{d}/idx_ok"], 1, ["train-images-idx3-ubyte: reading it takes",
     "(the file and its pixels)", "(TG_MAX_MEMORY)", "whole file is read"],
     {"TG_MAX_MEMORY": "1K"}),
    ("charlm", "--seconds 0 alone (no limit at all: trained nothing, silently; on --resume it "
     "dropped the run's --steps)", ["--text", "{d}/tiny.txt", "--seconds", "0"], 2,
     ["--seconds 0 alone sets no limit", "--steps"]),
    ("charlm", "a one-character text (was: too short for --batch 1 streams of --seq-len 1)",
     ["--text", "{d}/one.txt", "--batch", "1", "--seq-len", "1"], 1,
     ["has 1 character", "at least 2"]),
    ("rowseq", "test images that fit alone but not beside the training images already held",
     RS + ["--data", "{d}/idx_held"], 1, ["t10k-images-idx3-ubyte: reading it takes",
     "beside the training images held", "(TG_MAX_MEMORY)", "--limit-test"],
     {"TG_MAX_MEMORY": "70000"}),
    # ---- an output over another run's training checkpoint (its state was lost)
    ("charlm", "--save naming another run's training checkpoint (replaced it by a model)",
     ["--text", "{d}/tiny.txt", "--save", "{d}/run.tck"] + CH, 2,
     ["--save", "run.tck", "is a training checkpoint", "--resume", "name another file"]),
    ("seq2seq", "--save naming another run's training checkpoint (replaced it by a model)",
     S2S + ["--save", "{d}/s.tck"], 2, ["--save", "s.tck", "is a training checkpoint"]),
    ("rowseq", "--save naming another run's training checkpoint (replaced it by a model)",
     RS + ["--data", "{d}/idx_ok", "--save", "{d}/r.tck"], 2,
     ["--save", "r.tck", "is a training checkpoint"]),
    ("charlm", "--save on its --load file when that is a training checkpoint (the run's state "
     "was dropped)", ["--text", "{d}/tiny.txt", "--load", "{d}/run.tck", "--save",
     "{d}/run.tck"] + CH, 2, ["--save", "run.tck", "is a training checkpoint", "--resume"]),
    ("charlm", "--log naming another run's training checkpoint (overwritten by the CSV)",
     ["--text", "{d}/tiny.txt", "--log", "{d}/run.tck"] + CH, 2,
     ["--log", "run.tck", "is a training checkpoint"]),
    ("seq2seq", "--export-torch naming a training checkpoint (replaced it by a state_dict)",
     ["--load", "{d}/sub.tg", "--export-torch", "{d}/s.tck", "--translate", "hello"], 2,
     ["--export-torch", "s.tck", "is a training checkpoint"]),
    # ---- found by session 29's hunt: each crashed, hung or blamed the wrong thing
    ("seq2seq", "a test side SentencePiece's normalization leaves empty (aborted, exit 134)",
     ["--train", "{d}/sub.tsv", "--test", "{d}/lsep.tsv", "--hidden", "8", "--embed", "4",
      "--epochs", "1"], 1,
     ["lsep.tsv:1: the source side is empty after SentencePiece's normalization"]),
    ("seq2seq", "a checkpoint's rng state all zeros (a resumed run hung, deaf to SIGTERM)",
     ["--resume", "{d}/s_zero_rng.tck", "--steps", "2"], 1,
     ["s_zero_rng.tck", "'rng.data' is an all-zero rng state"]),
    ("seq2seq", "a checkpoint's Adam second moment negative (the first step was NaN, blamed "
     "on --lr)", ["--resume", "{d}/s_neg_v.tck", "--steps", "2"], 1,
     ["s_neg_v.tck", "'optim.v' holds -1 at index 0", "never negative"]),
    # ---- an output that is no model over a model file (the model was lost)
    ("seq2seq", "--log naming another run's model file (overwritten by the CSV)",
     S2S + ["--log", "{d}/ok.ckpt"], 2, ["--log", "ok.ckpt", "is a model", "name another file"]),
    ("seq2seq", "--attention-map naming another run's model file (replaced by an SVG)",
     S2S + ["--attention", "general", "--attention-map", "{d}/ok.ckpt"], 2,
     ["--attention-map", "ok.ckpt", "is a model"]),
    # ---- real numbers: decimal, within a double
    ("seq2seq", "a number nearer 0 than a double holds (--lr 1e-400 was taken as 0)",
     S2S + ["--lr", "1e-400"], 2, ["--lr", "'1e-400'", "out of range", "[0, 10]"]),
    ("rowseq", "a number beyond a double (was 'expected a number')", RS + ["--lr", "1e400"], 2,
     ["--lr", "'1e400'", "out of range"]),
    ("charlm", "a hexadecimal number (--clip 0x10 was 16; the integer flags refused it)",
     CH + ["--clip", "0x10"], 2, ["--clip", "expected a number", "'0x10'"]),
    # ---- a log that cannot be written: refused before training, not found at the end
    ("seq2seq", "--log that takes nothing (trained to the end, every row lost, then exit 1)",
     S2S + ["--log", "/dev/full"], 1, ["--log /dev/full", "cannot write log file", "No space left"]),
    # ---- rowseq took what charlm refuses, and read a typo as "the default"
    ("rowseq", "--momentum with --optim adam (dropped silently)",
     RS + ["--optim", "adam", "--momentum", "0.5"], 2,
     ["--momentum is for --optim sgd or momentum, not adam"]),
    ("rowseq", "--shards above --batch (shards with no rows)", RS + ["--batch", "3", "--shards",
     "5"], 2, ["--shards 5 must be in 1..min(--batch 3, 64)"]),
    ("rowseq", "--weight-decay negative but not -1 (read as the optimizer's default)",
     RS + ["--weight-decay", "-0.5"], 2, ["--weight-decay -0.5", "0 or more",
     "-1: the optimizer's default"]),
    # ---- counters no run writes (a resume said "3 of 4 steps skipped", a NaN training loss)
    ("charlm", "a checkpoint's 'u64.skipped' above its 'u64.step'",
     ["--resume", "{d}/skipedit.tck", "--steps", "4"], 1,
     ["skipedit.tck", "metadata 'u64.skipped' is 3, above 'u64.step' 2"]),
    ("charlm", "a checkpoint's 'u64.skip_streak' above its 'u64.skipped'",
     ["--resume", "{d}/streakedit.tck", "--steps", "4"], 1,
     ["streakedit.tck", "metadata 'u64.skip_streak' is 1, above 'u64.skipped' 0"]),
    # ---- sampling flags without a sample (dropped unsaid)
    ("charlm", "--prime without --sample", CH + ["--text", "{d}/tiny.txt", "--prime", "he"], 2,
     ["--prime needs --sample N"]),
    ("charlm", "--temperature without --sample", CH + ["--text", "{d}/tiny.txt", "--temperature",
     "0.5"], 2, ["--temperature needs --sample N"]),
    ("seq2seq", "--shards above --batch (shards with no rows; exit 0 before)",
     S2S + ["--batch", "3", "--shards", "5"], 2, ["--shards 5 must be in 1..min(--batch 3, 256)"]),
    ("seq2seq", "TG_MAX_MEMORY with a blank and a sign (' -1' was 2^64 bytes: no cap)", S2S, 2,
     ["TG_MAX_MEMORY: expected bytes", "got ' -1'"], {"TG_MAX_MEMORY": " -1"}),
    # ---- a model whose weights are finite but overflow float (every one ±3e38): its
    # outputs are NaN or infinite, and inference gave silent wrong output, exit 0
    ("seq2seq", "--translate with a model whose outputs overflow (it printed only unknown-word tokens)",
     ["--import-torch", "{d}/s2s_big.torch.st", "--translate", "I eat rice."], 1,
     ["s2s_big.torch.st: the model's outputs are not finite",
      "NaN or infinite logits at output token 1 of sentence 1", "too large or damaged"]),
    ("seq2seq", "--translate --beam 4 with a model whose outputs overflow (an empty line)",
     ["--import-torch", "{d}/s2s_big.torch.st", "--beam", "4", "--translate", "I eat rice."], 1,
     ["s2s_big.torch.st: the model's outputs are not finite",
      "NaN or infinite logits at output token 1 of sentence 1", "too large or damaged"]),
    ("seq2seq", "evaluating a model whose outputs overflow (BLEU 0.00)",
     ["--import-torch", "{d}/s2s_big.torch.st", "--pairs", "200", "--test-pairs", "20",
      "--epochs", "0"], 1,
     ["s2s_big.torch.st: the model's outputs are not finite",
      "NaN or infinite logits at output token 1 of test sentence", "too large or damaged"]),
    ("charlm", "--sample from a model whose outputs overflow (the last character repeated)",
     ["--import-torch", "{d}/big.torch.st", "--sample", "20", "--prime", "h"], 1,
     ["big.torch.st: the model's outputs are not finite",
      "NaN or infinite logits at sampled character 1", "too large or damaged"]),
    ("charlm", "evaluating a model whose outputs overflow (valid_bpc=nan)",
     ["--text", "{d}/tiny.txt", "--import-torch", "{d}/big.torch.st", "--steps", "0"], 1,
     ["big.torch.st: the model's outputs are not finite",
      "NaN or infinite loss on the validation text", "too large or damaged"]),
    ("rowseq", "evaluating a model whose outputs overflow (test_loss nan)",
     ["--data", "{d}/idx_ok", "--import-torch", "{d}/r_big.torch.st"], 1,
     ["r_big.torch.st: the model's outputs are not finite",
      "NaN or infinite loss on the test set", "too large or damaged"]),
    ("seq2seq", "--import-torch of a subword Seq2Seq whose piece model is damaged (the message "
     "did not name --import-torch)", ["--import-torch", "{d}/sub_crc.torch.st", "--translate",
     "Straße"], 1, ["--import-torch", "sub_crc.torch.st", "s2s.src_pieces", "damaged"]),
    ("seq2seq", "a subword model whose two piece models were removed (it translated as a word "
     "model: pieces joined by spaces)", ["--load", "{d}/sub_nopieces.tg", "--translate",
     "Straße"], 1, ["sub_nopieces.tg", "'s2s.src_pieces' and 's2s.tgt_pieces' missing",
                    "subword model"]),
    ("seq2seq", "--import-torch of a subword Seq2Seq whose two piece models were removed (as "
     "the row before)", ["--import-torch", "{d}/sub_nopieces.torch.st", "--translate", "Straße"],
     1, ["--import-torch", "sub_nopieces.torch.st",
         "'s2s.src_pieces' and 's2s.tgt_pieces' missing", "subword model"]),
    ("seq2seq", "a subword model whose vocabulary holds an ESC where its piece model has a "
     "piece (the message sent the ESC raw to the terminal)", ["--load", "{d}/sub_esc.tg",
     "--translate", "Straße"], 1, ["sub_esc.tg", "piece model does not match the vocabulary",
                                   "id 4", "'\\x1B' in the vocabulary"]),
    ("seq2seq", "--translate whose decoding arena exceeds the memory (it was not checked "
     "against TG_MAX_MEMORY)", ["--load", "{d}/sub.tg", "--translate", "Straße"], 1,
     ["this configuration needs", "step arenas", "is available (TG_MAX_MEMORY)",
      "lower --eval-batch, --beam or --max-len"], {"TG_MAX_MEMORY": "1M"}),
    # ---- a launcher's rank variable left in a run of one process (no mpirun) turned
    # off rank 0's output checks: the run trained, then lost its --save
    ("charlm", "--save into a missing folder, OMPI_COMM_WORLD_RANK=1 left in the environment "
     "(trained, then could not save)", CH + ["--text", "{d}/tiny.txt", "--save",
     "{d}/no/such/m.st"], 1, ["--save", "m.st", "no/such", "No such file"],
     {"OMPI_COMM_WORLD_RANK": "1"}),
    ("seq2seq", "--save into a missing folder, OMPI_COMM_WORLD_RANK=1 left in the environment "
     "(trained, then could not save)", S2S + ["--save", "{d}/no/such/m.st"], 1,
     ["--save", "m.st", "no/such", "No such file"], {"OMPI_COMM_WORLD_RANK": "1"}),
]

TIMEOUT = 60


# ------------------------------------------------------------------ fixtures

def safetensors_parts(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8:8 + n]), bytearray(b[8 + n:])


CRC_KEY = "tapegrad.data_crc32"  # graph/tg_checkpoint.h, TG_CKPT_CRC_KEY
HEADER_CRC_KEY = "tapegrad.header_crc32"  # TG_CKPT_HEADER_CRC_KEY


def header_crc(header):
    """TG_CKPT_HEADER_CRC_KEY's checksum of a well-formed header (the
    canonical bytes graph/tg_checkpoint.h describes); None when it is not
    well-formed (its own check comes first then)."""
    def field(crc, b):
        return zlib.crc32(b + b"\0", crc)
    try:
        crc = 0
        for key in sorted(header, key=str.encode):
            crc = field(crc, key.encode())
            v = header[key]
            if key == "__metadata__":
                for k in sorted((k for k in v if k != HEADER_CRC_KEY), key=str.encode):
                    crc = field(field(crc, k.encode()), v[k].encode())
                continue
            crc = field(crc, v["dtype"].encode())
            for name in ("shape", "data_offsets"):
                crc = field(crc, "".join("%d," % int(n) for n in v[name]).encode())
        return crc
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def write_overflowing(src, dst):
    """dst: safetensors file src with every value set to 3e38 of its sign
    (1e308 in an F64 file, the double build's): finite, as every importer
    takes them, but a model whose sums overflow its type (a PyTorch export
    scaled past its range)."""
    h, data = safetensors_parts(src)
    for name, t in h.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] in ("F32", "F64"), (src, name, t["dtype"])
        code, size, big = ("f", 4, 3e38) if t["dtype"] == "F32" else ("d", 8, 1e308)
        lo, hi = t["data_offsets"]
        values = struct.unpack(f"<{(hi - lo) // size}{code}", bytes(data[lo:hi]))
        data[lo:hi] = struct.pack(f"<{len(values)}{code}", *(math.copysign(big, v) for v in values))
    write_safetensors(dst, h, data)


def write_safetensors(path, header, data, header_len=None, fix_crc=True):
    """header + data as a safetensors file. Where the header carries our
    checksums (of the data, of the header) they are set to the file's, as a
    tool that writes consistent files would (so a row reaches the check it
    is about); fix_crc=False keeps the header's own, stale when the data or
    the header changed."""
    meta = header.get("__metadata__", {})
    if fix_crc and CRC_KEY in meta:  # in a copy: the caller's header stays as it was
        crc = {CRC_KEY: "%08x" % zlib.crc32(bytes(data))}
        header = dict(header, __metadata__=dict(meta, **crc))
    crc = header_crc(header) if fix_crc and HEADER_CRC_KEY in meta else None
    if crc is not None:
        header = dict(header, __metadata__=dict(header["__metadata__"],
                                                **{HEADER_CRC_KEY: "%08x" % crc}))
    s = json.dumps(header).encode()
    s += b" " * (-len(s) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(s) if header_len is None else header_len) + s + bytes(data))


def idx_images(n, side=28, magic=0x803):
    return struct.pack(">IIII", magic, n, side, side) + bytes((i * 7) % 256 for i in range(n * side * side))


def idx_labels(n, bad_at=None):
    labels = [i % 10 for i in range(n)]
    if bad_at is not None:
        labels[bad_at] = 12
    return struct.pack(">II", 0x801, n) + bytes(labels)


def write_idx_dir(d, files):
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def make_idx_fixtures(d):
    ok = {"train-images-idx3-ubyte": idx_images(40), "train-labels-idx1-ubyte": idx_labels(40),
          "t10k-images-idx3-ubyte": idx_images(20), "t10k-labels-idx1-ubyte": idx_labels(20)}
    write_idx_dir(f"{d}/idx_ok", ok)
    write_idx_dir(f"{d}/idx_magic", dict(ok, **{"train-images-idx3-ubyte": idx_images(40, magic=0x801)}))
    write_idx_dir(f"{d}/idx_trunc", dict(ok, **{"train-images-idx3-ubyte": idx_images(40)[:-100]}))
    gz = {k: v for k, v in ok.items() if not k.startswith("train-images")}
    gz["train-images-idx3-ubyte.gz"] = gzip.compress(idx_images(40), mtime=0)[:-20]
    write_idx_dir(f"{d}/idx_gz", gz)
    write_idx_dir(f"{d}/idx_label", dict(ok, **{"train-labels-idx1-ubyte": idx_labels(40, bad_at=7)}))
    write_idx_dir(f"{d}/idx_count", dict(ok, **{"train-labels-idx1-ubyte": idx_labels(39)}))
    write_idx_dir(f"{d}/idx_empty", dict(ok, **{"train-images-idx3-ubyte": b""}))
    write_idx_dir(f"{d}/idx_missing", {k: v for k, v in ok.items() if k != "t10k-labels-idx1-ubyte"})
    other = bytearray(ok["train-images-idx3-ubyte"])
    other[100] ^= 0xFF  # same shape, one pixel changed
    write_idx_dir(f"{d}/idx_other", dict(ok, **{"train-images-idx3-ubyte": bytes(other)}))
    write_idx_dir(f"{d}/idx_held", dict(ok, **{"t10k-images-idx3-ubyte": idx_images(30),
                                               "t10k-labels-idx1-ubyte": idx_labels(30)}))


def make_text_fixtures(d):
    def put(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
    put("tiny.txt", "hello world, this is a tiny text.\nsecond line of text here.\n")
    put("changed.txt", "hello world, this is a tiny text.\nsecond line of text hare.\n")  # same characters
    put("other.txt", "Completely different: XYZ 123 ~~~\n")
    put("empty.txt", b"")
    put("one.txt", "a")
    put("bad_utf8.txt", b"first line\nab\xc3\x28cd\n")
    put("good.tsv", "I eat rice.\tnanun bap-eul meokneunda.\nGo!\tGa!\n")
    put("no_tab.tsv", "a\tb\nthis line has no tab\n")
    put("bad_utf8.tsv", b"ok\tfine\nbad \xc3\x28\tx\n")
    put("empty_side.tsv", "a\t\n")
    side = lambda i: "".join(" " if k % 7 == 6 else chr(97 + (i + k) % 26) for k in range(300))
    put("long_pairs.tsv", "".join(f"{side(i)}\t{side(i)}\n" for i in range(40)))
    with open(os.path.join(d, "huge.txt"), "wb") as f:  # sparse: no disk used
        f.truncate((1 << 30) + 1)
    os.mkfifo(os.path.join(d, "pipe"))


def fixture_program(name):
    """The program whose run makes the .tck or .torch.st fixture name:
    seq2seq's s.*, s_*, sub* and s2s*; rowseq's r.*, r_* and shape.torch.st;
    charlm's the rest."""
    if name.startswith(("s.", "s_", "sub", "s2s")):
        return "seq2seq"
    if name.startswith(("r.", "r_")) or name == "shape.torch.st":
        return "rowseq"
    return "charlm"


def make_fixture(cmd, what):
    """Runs a program that writes a fixture; a failed run ends the test (a
    row whose fixture is missing would otherwise check nothing)."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env=child_env(),
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"bad_inputs: cannot make {what} (exit {r.returncode}): {r.stderr}")


def make_gone_data_checkpoints(d, exes):
    """Training checkpoints of runs whose data is then removed or edited:
    gone.tck (charlm, gone.txt removed), edited.tck (charlm, edited.txt
    given another vocabulary), s_gone.tck (seq2seq, gone.tsv removed),
    r_gone.tck (rowseq, idx_gone removed)."""
    shutil.copy(f"{d}/tiny.txt", f"{d}/gone.txt")
    shutil.copy(f"{d}/tiny.txt", f"{d}/edited.txt")
    shutil.copy(f"{d}/good.tsv", f"{d}/gone.tsv")
    shutil.copytree(f"{d}/idx_ok", f"{d}/idx_gone")
    runs = [("charlm", ["--text", f"{d}/gone.txt", "--checkpoint", f"{d}/gone.tck"] + CH),
            ("charlm", ["--text", f"{d}/edited.txt", "--checkpoint", f"{d}/edited.tck"] + CH),
            ("seq2seq", S2S + ["--train", f"{d}/gone.tsv", "--test", f"{d}/gone.tsv",
                               "--checkpoint", f"{d}/s_gone.tck"]),
            ("rowseq", RS + ["--data", f"{d}/idx_gone", "--checkpoint", f"{d}/r_gone.tck"])]
    for prog, args in runs:
        if prog in exes:
            make_fixture([exes[prog]] + args, "a fixture checkpoint")
    os.remove(f"{d}/gone.txt")
    shutil.copy(f"{d}/other.txt", f"{d}/edited.txt")
    os.remove(f"{d}/gone.tsv")
    shutil.rmtree(f"{d}/idx_gone")


def make_training_checkpoints(d, exes):
    """s.tck (seq2seq) and r.tck (rowseq) from --checkpoint runs, and a
    truncated copy of s.tck."""
    runs = {"seq2seq": (S2S + ["--checkpoint", f"{d}/s.tck"], "s.tck"),
            "rowseq": (RS + ["--data", f"{d}/idx_ok", "--checkpoint", f"{d}/r.tck"], "r.tck")}
    for prog, (args, name) in runs.items():
        if prog in exes:
            make_fixture([exes[prog]] + args, name)
    if os.path.exists(f"{d}/s.tck"):
        raw = open(f"{d}/s.tck", "rb").read()
        with open(f"{d}/s_trunc.tck", "wb") as f:
            f.write(raw[:len(raw) // 2])
        h, data = safetensors_parts(f"{d}/s.tck")  # consistent files: checksums set to match
        write_safetensors(f"{d}/s_zero_rng.tck",
                          dict(h, __metadata__=dict(h["__metadata__"], **{"rng.data": "0" * 64})),
                          data)
        v, fmt = h["optim.v"]["data_offsets"][0], "<d" if h["optim.v"]["dtype"] == "F64" else "<f"
        data[v:v + struct.calcsize(fmt)] = struct.pack(fmt, -1.0)  # the double build's F64
        write_safetensors(f"{d}/s_neg_v.tck", h, data)


def make_subword_fixtures(d, seq2seq):
    """sub.tg and sub.tck from a seq2seq subword run on good.tsv, and broken
    copies: sub_crc.tg / sub_crc.tck (a base64 character of the source piece
    model changed: its crc32 no longer matches), sub_swap.tg (the source
    side holds the target's piece model), sub_crc.torch.st (sub.tg exported
    for PyTorch, its source piece model damaged as sub_crc.tg's),
    sub_nopieces.tg and sub_nopieces.torch.st (both piece models removed),
    sub_esc.tg (the source vocabulary's first word made an ESC)."""
    tsv = f"{d}/sub.tsv"
    with open(tsv, "w", encoding="utf-8") as f:
        f.write("Straße über Öl.\tStreet over oil.\n안녕 세계\tHello world.\n" * 3)
    with open(f"{d}/lsep.tsv", "w", encoding="utf-8") as f:
        f.write("\u2028\tStreet\n")  # a LINE SEPARATOR: text to our reader, no pieces
    make_fixture([seq2seq, "--train", tsv, "--test", tsv, "--hidden", "8", "--embed", "4",
                  "--epochs", "1", "--save", f"{d}/sub.tg", "--checkpoint", f"{d}/sub.tck"],
                 "the subword fixtures")

    def damaged(value):
        k = len(value) // 2
        return value[:k] + ("A" if value[k] != "A" else "B") + value[k + 1:]
    h, data = safetensors_parts(f"{d}/sub.tg")
    h1 = json.loads(json.dumps(h))
    h1["__metadata__"]["s2s.src_pieces"] = damaged(h1["__metadata__"]["s2s.src_pieces"])
    write_safetensors(f"{d}/sub_crc.tg", h1, data)
    h2 = json.loads(json.dumps(h))
    h2["__metadata__"]["s2s.src_pieces"] = h["__metadata__"]["s2s.tgt_pieces"]
    write_safetensors(f"{d}/sub_swap.tg", h2, data)
    h, data = safetensors_parts(f"{d}/sub.tck")
    h["__metadata__"]["config.src-pieces"] = damaged(h["__metadata__"]["config.src-pieces"])
    write_safetensors(f"{d}/sub_crc.tck", h, data)
    make_fixture([seq2seq, "--load", f"{d}/sub.tg", "--translate", "--export-torch",
                  f"{d}/sub.torch.st"], "the subword export")
    h, data = safetensors_parts(f"{d}/sub.torch.st")
    h["__metadata__"]["s2s.src_pieces"] = damaged(h["__metadata__"]["s2s.src_pieces"])
    write_safetensors(f"{d}/sub_crc.torch.st", h, data)
    for name in ("sub_nopieces.tg", "sub_nopieces.torch.st"):
        h, data = safetensors_parts(f"{d}/{name.replace('_nopieces', '')}")
        for key in ("s2s.src_pieces", "s2s.tgt_pieces"):
            del h["__metadata__"][key]
        write_safetensors(f"{d}/{name}", h, data)
    h, data = safetensors_parts(f"{d}/sub.tg")
    words = h["__metadata__"]["s2s.src_vocab"].split("\n")
    h["__metadata__"]["s2s.src_vocab"] = "\n".join(["\x1b"] + words[1:])
    write_safetensors(f"{d}/sub_esc.tg", h, data)


def make_torch_fixtures(d, exes):
    """ok.torch.st (charlm --export-torch of ok.ckpt), r.torch.st (rowseq
    --export-torch), and broken copies: trunc.torch.st, r_trunc.torch.st,
    shape.torch.st (rnn.weight_ih_l0 reshaped, the same bytes), module.torch.st
    (ok.torch.st whose metadata names RowRNN), big.torch.st and r_big.torch.st
    (every weight of ok.torch.st, r.torch.st at ±3e38: write_overflowing)."""
    runs = [("charlm", ["--load", f"{d}/ok.ckpt", "--export-torch", f"{d}/ok.torch.st"]),
            ("rowseq", RS + ["--data", f"{d}/idx_ok", "--export-torch", f"{d}/r.torch.st"])]
    for prog, args in runs:
        if prog in exes:
            make_fixture([exes[prog]] + args, args[-1])
    for src, dst in (("ok", "trunc"), ("r", "r_trunc")):
        if os.path.exists(f"{d}/{src}.torch.st"):
            raw = open(f"{d}/{src}.torch.st", "rb").read()
            with open(f"{d}/{dst}.torch.st", "wb") as f:
                f.write(raw[:len(raw) * 2 // 3])
    if os.path.exists(f"{d}/ok.torch.st"):
        h, data = safetensors_parts(f"{d}/ok.torch.st")
        h["__metadata__"]["torch.module"] = "RowRNN"
        write_safetensors(f"{d}/module.torch.st", h, data)
    if os.path.exists(f"{d}/r.torch.st"):
        h, data = safetensors_parts(f"{d}/r.torch.st")
        rows, cols = h["rnn.weight_ih_l0"]["shape"]
        h["rnn.weight_ih_l0"]["shape"] = [rows * 2, cols // 2]
        write_safetensors(f"{d}/shape.torch.st", h, data)
    for src, dst in (("ok", "big"), ("r", "r_big")):
        if os.path.exists(f"{d}/{src}.torch.st"):
            write_overflowing(f"{d}/{src}.torch.st", f"{d}/{dst}.torch.st")
    make_s2s_torch_fixtures(d, exes)


def make_s2s_torch_fixtures(d, exes):
    """s2s.torch.st (seq2seq --export-torch of a 1-epoch model) and broken
    copies: s2s_shape.torch.st (out.weight reshaped, the same bytes),
    s2s_missing.torch.st (decoder.weight_hh_l0 renamed away), s2s_huge.torch.st
    (metadata: 8 layers of 8192 hidden units, tensors as they were),
    s2s_dropout.torch.st (metadata s2s.dropout '0.1abc'), s2s_drop96.torch.st (s2s.dropout
    '0.96', above --dropout's bound), s2s_space.torch.st (s2s.hidden with a leading
    space), s2s_tail.torch.st (no checksum keys, 8 bytes appended), s2s_big.torch.st
    (every weight at ±3e38: write_overflowing)."""
    if "seq2seq" not in exes:
        return
    make_fixture([exes["seq2seq"]] + S2S + ["--export-torch", f"{d}/s2s.torch.st"],
                 "s2s.torch.st")
    h, data = safetensors_parts(f"{d}/s2s.torch.st")
    rows, cols = h["out.weight"]["shape"]
    h["out.weight"]["shape"] = [rows * 2, cols // 2]
    write_safetensors(f"{d}/s2s_shape.torch.st", h, data)
    h, data = safetensors_parts(f"{d}/s2s.torch.st")
    h["decoder.weight_hh_l9"] = h.pop("decoder.weight_hh_l0")
    write_safetensors(f"{d}/s2s_missing.torch.st", h, data)
    for name, key, value in (("s2s_huge", "s2s.hidden", "8192"),
                             ("s2s_floor", "s2s.hidden", "2048"),
                             ("s2s_dropout", "s2s.dropout", "0.1abc"),
                             ("s2s_drop96", "s2s.dropout", "0.96"),
                             ("s2s_space", "s2s.hidden", None)):
        h, data = safetensors_parts(f"{d}/s2s.torch.st")
        if value is None:  # the file's own width, with a leading space
            value = " " + h["__metadata__"][key]
        h["__metadata__"][key] = value
        if name == "s2s_huge":
            h["__metadata__"]["s2s.layers"] = "8"
        write_safetensors(f"{d}/{name}.torch.st", h, data)
    h, data = safetensors_parts(f"{d}/s2s.torch.st")
    for key in (CRC_KEY, HEADER_CRC_KEY):
        h["__metadata__"].pop(key, None)
    write_safetensors(f"{d}/s2s_tail.torch.st", h, bytes(data) + b"\0" * 8)
    write_overflowing(f"{d}/s2s.torch.st", f"{d}/s2s_big.torch.st")


def make_checkpoint_fixtures(d, charlm):
    """ok.ckpt from a 3-step charlm run, and broken copies of it."""
    make_fixture([charlm, "--text", f"{d}/tiny.txt", "--save", f"{d}/ok.ckpt"] + CH,
                 "the fixture checkpoint")
    shutil.copy(f"{d}/ok.ckpt", f"{d}/keep.ckpt")
    raw = open(f"{d}/ok.ckpt", "rb").read()
    with open(f"{d}/trunc.ckpt", "wb") as f:
        f.write(raw[:len(raw) // 2])
    h, data = safetensors_parts(f"{d}/ok.ckpt")
    write_safetensors(f"{d}/header_len.ckpt", h, data, header_len=1 << 20)
    h2 = json.loads(json.dumps(h))
    h2["head.bias"]["dtype"] = "I32"
    write_safetensors(f"{d}/dtype.ckpt", h2, data)
    h3 = json.loads(json.dumps(h))
    h3["head.weight"]["shape"] = h3["head.weight"]["shape"][::-1]
    write_safetensors(f"{d}/shape.ckpt", h3, data)
    h4 = json.loads(json.dumps(h))
    h4["__metadata__"]["charmodel.hidden"] = "16"
    write_safetensors(f"{d}/config.ckpt", h4, data)
    for name, hidden in (("config_big", "2048"), ("config_huge", "65536")):
        h4["__metadata__"]["charmodel.hidden"] = hidden
        write_safetensors(f"{d}/{name}.ckpt", h4, data)
    h5 = json.loads(json.dumps(h))
    h5["__metadata__"]["charmodel.vocab"] = "10,32,x"
    write_safetensors(f"{d}/vocab.ckpt", h5, data)
    # values in the file's own dtype (F32 in the float builds, F64 in double)
    def pack(name, x):
        return struct.pack("<f" if h[name]["dtype"] == "F32" else "<d", x)

    def width(name):
        return 4 if h[name]["dtype"] == "F32" else 8
    d6 = bytearray(data)
    o, w = h["rnn.l0.weight_hh"]["data_offsets"][0], width("rnn.l0.weight_hh")
    d6[o + 2 * w:o + 3 * w] = pack("rnn.l0.weight_hh", float("nan"))
    write_safetensors(f"{d}/nan.ckpt", h, d6)
    d8 = bytearray(data)
    d8[len(d8) // 2] ^= 0x10  # one bit of a stored value: finite still, only the checksum tells
    write_safetensors(f"{d}/flip.ckpt", h, d8, fix_crc=False)
    # Output biases of -max except one +max: every logit is finite, but a
    # target at a -max logit costs 2 max, beyond the largest finite value of
    # the build's precision, and nearly every target is such.
    d7 = bytearray(data)
    big = 3.0e38 if h["head.bias"]["dtype"] == "F32" else 1.7e308
    lo, hi = h["head.bias"]["data_offsets"]
    w = width("head.bias")
    for k, i in enumerate(range(lo, hi, w)):
        d7[i:i + w] = pack("head.bias", big if k == 0 else -big)
    write_safetensors(f"{d}/huge.ckpt", h, d7)
    # a training checkpoint (charlm --checkpoint)
    make_fixture([charlm, "--text", f"{d}/tiny.txt", "--checkpoint", f"{d}/run.tck", "--every",
                  "2"] + CH, "run.tck")
    raw = open(f"{d}/run.tck", "rb").read()
    with open(f"{d}/trunc.tck", "wb") as f:
        f.write(raw[:len(raw) * 2 // 3])
    with open(f"{d}/tail.tck", "wb") as f:
        f.write(raw + b"\0" * 8)
    h, data = safetensors_parts(f"{d}/run.tck")
    h["__metadata__"]["u64.step"] = str(int(h["__metadata__"]["u64.step"]) + 1)
    write_safetensors(f"{d}/stepedit.tck", h, data, fix_crc=False)
    # counters no run writes, in consistent files (checksums set to match)
    h, data = safetensors_parts(f"{d}/run.tck")
    step = int(h["__metadata__"]["u64.step"])
    for name, key, value in (("skipedit", "u64.skipped", step + 1),
                             ("streakedit", "u64.skip_streak", 1)):
        write_safetensors(f"{d}/{name}.tck", dict(h, __metadata__=dict(h["__metadata__"],
                          **{key: str(value)})), data)


# ------------------------------------------------------------------ running

def child_env():
    env = dict(os.environ)
    # A program that exits on an error leaves its allocations behind on
    # purpose: no leak report on exit (it would also change exit code 2 to
    # 1 under ASan). Memory errors still abort (a signal: the row fails).
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=1"
    env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:abort_on_error=1:print_stacktrace=1")
    env["OMP_NUM_THREADS"] = "1"
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def run_row(row, exe, d):
    prog, what, args, want_rc, fragments = row[:5]
    env = dict(child_env(), **(row[5] if len(row) > 5 else {}))
    stdout = env.pop(STDOUT_KEY, None)  # not an environment variable: where stdout goes
    args = [a.replace("{d}", d) for a in args]
    if "--save" not in args:  # first, so that a row's last flag stays last
        args = ["--save", f"{d}/keep.ckpt"] + args
    before = checkpoints(d)
    problems = []
    try:
        with open(stdout, "w") if stdout else contextlib.nullcontext() as sink:
            r = subprocess.run([exe] + args, stdout=sink if stdout else subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, errors="replace",
                               timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL)
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, ""
        problems.append(f"hang: no exit within {TIMEOUT} s")
    lines = [l for l in err.splitlines() if l.strip()]
    last = lines[-1] if lines else ""
    if rc is not None and rc < 0:
        problems.append(f"killed by signal {-rc}")
    elif rc is not None and rc != want_rc:
        problems.append(f"exit code {rc}, expected {want_rc}")
    if rc is not None and not last.startswith(prog + ": "):
        problems.append(f"last stderr line does not start with '{prog}: '")
    for frag in fragments:
        frag = frag.replace("{d}", d)
        if frag not in last:
            problems.append(f"message lacks '{frag}'")
    if "Sanitizer" in err or "runtime error" in err:
        problems.append("sanitizer report on stderr")
    after = checkpoints(d)
    for name in sorted(before):
        if after.get(name) != before[name]:
            problems.append(f"existing checkpoint {name} was changed or removed")
            with open(os.path.join(d, name), "wb") as f:
                f.write(before[name])
    return rc, last, problems


def checkpoints(d):
    """Bytes of every checkpoint in the fixture folder: none may change."""
    return {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)
            if n.endswith((".ckpt", ".tck"))}


def shorten(msg, d):
    return msg.replace(d + "/", "").replace(d, "DIR")


def essential_args(args):
    """The row's own arguments, without the size flags every row carries."""
    out, skip = [], False
    common = {("--hidden", "8"), ("--embed", "4"), ("--batch", "2"), ("--seq-len", "4"),
              ("--steps", "2"), ("--pairs", "200"), ("--test-pairs", "20"), ("--epochs", "1"),
              ("--seconds", "20")}
    for i, a in enumerate(args):
        if skip:
            skip = False
            continue
        if i + 1 < len(args) and (a, args[i + 1]) in common:
            skip = True
            continue
        out.append(a)
    return out


def main(argv):
    markdown = "--markdown" in argv
    exes = {}
    for name in ("charlm", "seq2seq", "rowseq"):
        if f"--{name}" in argv:
            p = argv[argv.index(f"--{name}") + 1]
            if os.path.exists(p):
                exes[name] = os.path.abspath(p)
    d = tempfile.mkdtemp(prefix="tg_bad_inputs_")
    try:
        make_text_fixtures(d)
        make_idx_fixtures(d)
        if "charlm" not in exes:
            print("bad_inputs: charlm is not built: it makes the fixture checkpoint; skipping all")
            return 77
        make_checkpoint_fixtures(d, exes["charlm"])
        make_training_checkpoints(d, exes)
        if "seq2seq" in exes:
            make_subword_fixtures(d, exes["seq2seq"])
        make_gone_data_checkpoints(d, exes)
        make_torch_fixtures(d, exes)
        failed = skipped = 0
        if markdown:
            print("| # | bad input | command | exit | message (stderr) |")
            print("|---|---|---|---|---|")
        for i, row in enumerate(ROWS, 1):
            prog = row[0]
            if prog not in exes:
                skipped += 1
                print(f"row {i:2d} SKIP  {prog}: {row[1]} ({prog} is not built)")
                continue
            # a fixture is missing only where the program that makes it is
            # not built (a failed fixture run ends the test, make_fixture)
            needed = [a.replace("{d}", d) for a in row[2] if a.endswith((".tck", ".torch.st"))
                      and "absent" not in a and "no/such" not in a]
            missing = [os.path.basename(p) for p in needed if not os.path.exists(p)]
            if missing and all(fixture_program(m) not in exes for m in missing):
                skipped += 1
                print(f"row {i:2d} SKIP  {prog}: {row[1]} ({', '.join(missing)}: its program "
                      "is not built)")
                continue
            if missing:
                failed += 1
                print(f"row {i:2d} FAIL  {prog}: {row[1]}: fixture {', '.join(missing)} missing")
                continue
            rc, last, problems = run_row(row, exes[prog], d)
            if markdown:
                shown = " ".join(essential_args(row[2])).replace("{d}/", "").replace("{d}", "DIR")
                env = row[5] if len(row) > 5 else {}
                envs = "".join(f"{k}={v} " for k, v in env.items() if k != STDOUT_KEY)
                to = f" > {env[STDOUT_KEY]}" if STDOUT_KEY in env else ""
                cell = shorten(last, d).replace("|", "\\|")
                print(f"| {i} | {row[1]} | `{envs}{prog} {shown}{to}` | {rc} | {cell} |")
                continue
            status = "FAIL" if problems else "ok  "
            print(f"row {i:2d} {status}  {prog}: {row[1]}: exit {rc}: {shorten(last, d)}")
            for p in problems:
                print(f"          -> {p}")
            failed += bool(problems)
        if not markdown:
            print(f"bad_inputs: {len(ROWS) - failed - skipped} of {len(ROWS)} rows ok, "
                  f"{failed} failed, {skipped} skipped")
        return 1 if failed else 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
