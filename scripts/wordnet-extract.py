#!/usr/bin/env python3
"""Extracts real English sentences from WordNet 3.0 (Debian's wordnet-base) for `quant eval`.

Usage: scripts/wordnet-extract.py [WORDNET_DIR] [OUT_DIR]
  WORDNET_DIR  where data.noun, data.verb, data.adj, data.adv are (default /usr/share/wordnet;
               without the package: apt-get download wordnet-base && dpkg -x wordnet-base_*.deb DIR,
               then DIR/usr/share/wordnet)
  OUT_DIR      default quant-cli/src/main/resources/wordnet

Writes, deterministically (same input, same bytes):
  calibration.txt  one sentence per line: definitions and examples of the calibration synsets
  pairs.tsv        definition<TAB>example, one per evaluation synset (its first example)
  LICENSE          the WordNet 3.0 licence, which must accompany copies of the database

A data line is "offset lex_filenum ss_type w_cnt word lex_id ... p_cnt pointers... | gloss"; the gloss is the
definition followed by "; " and double-quoted examples (WordNet's wndb(5) manual page). Synsets are shuffled with a
fixed seed and split: the first CALIBRATION_SYNSETS go to calibration, the next EVAL_PAIRS (with an example) to
evaluation. Evaluation keeps no text that appears in calibration, and no example twice, so the splits are disjoint and
every retrieval target is unique.
"""
import os
import random
import re
import sys

CALIBRATION_SYNSETS = 3000
EVAL_PAIRS = 1200
SEED = 42

LICENSE = """WordNet Release 3.0

This software and database is being provided to you, the LICENSEE, by
Princeton University under the following license.  By obtaining, using
and/or copying this software and database, you agree that you have
read, understood, and will comply with these terms and conditions.:

Permission to use, copy, modify and distribute this software and
database and its documentation for any purpose and without fee or
royalty is hereby granted, provided that you agree to comply with
the following copyright notice and statements, including the disclaimer,
and that the same appear on ALL copies of the software, database and
documentation, including modifications that you make for internal
use or for distribution.

WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.

THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR
IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON
UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-
ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT
INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR
OTHER RIGHTS.

The name of Princeton University or Princeton may not be used in
advertising or publicity pertaining to distribution of the software
and/or database.  Title to copyright in this software, database and
any associated documentation shall at all times remain with
Princeton University and LICENSEE agrees to preserve same.

(Extracted by quant4j's scripts/wordnet-extract.py from Debian's
wordnet-base package, version 1:3.0-37.)
"""


def synsets(wordnet_dir):
    for pos in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(wordnet_dir, "data." + pos), encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue  # the licence header
                offset = line.split(" ", 1)[0]
                gloss = line.split("|", 1)[1].strip()
                examples = [e.strip() for e in re.findall(r'"([^"]+)"', gloss)]
                definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
                if definition:
                    yield pos + ":" + offset, definition, [e for e in examples if len(e.split()) >= 3]


def main():
    wordnet_dir = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet"
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "quant-cli/src/main/resources/wordnet"
    all_synsets = sorted(synsets(wordnet_dir))
    random.Random(SEED).shuffle(all_synsets)
    calibration = []
    seen = set()
    for _, definition, examples in all_synsets[:CALIBRATION_SYNSETS]:
        for text in [definition] + examples:
            if text not in seen:
                seen.add(text)
                calibration.append(text)
    pairs = []
    used = set()
    for _, definition, examples in all_synsets[CALIBRATION_SYNSETS:]:
        if len(pairs) == EVAL_PAIRS:
            break
        if not examples:
            continue
        example = examples[0]
        if definition in seen or example in seen or example in used or "\t" in definition + example:
            continue
        used.add(example)
        pairs.append((definition, example))
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "calibration.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.writelines(t + "\n" for t in calibration)
    with open(os.path.join(out_dir, "pairs.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.writelines(d + "\t" + e + "\n" for d, e in pairs)
    with open(os.path.join(out_dir, "LICENSE"), "w", encoding="utf-8", newline="\n") as f:
        f.write(LICENSE)
    print(f"{len(calibration)} calibration sentences, {len(pairs)} definition/example pairs -> {out_dir}")


if __name__ == "__main__":
    main()
