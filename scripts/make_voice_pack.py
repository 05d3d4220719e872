#!/usr/bin/env python3
"""Generate the shipped voice pack with espeak-ng (a stand-in until a site records its own), or
regenerate the committed manifest from the fragment catalogue.

    .venv/bin/python scripts/make_voice_pack.py                  # into <IVR_AUDIO_CACHE_DIR>/voice-pack-synthetic
    .venv/bin/python scripts/make_voice_pack.py --out /tmp/pack --lang ru
    .venv/bin/python scripts/make_voice_pack.py --manifest       # rewrite ivr/data/voice_pack/manifest.toml

The audio is not committed (about 240 WAVs, 2 MB): it is made here, at setup or on first use
(IVR_VOICE_PACK=synthetic generates it in the audio cache directory when it is missing).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.config import load_settings  # noqa: E402
from ivr.prompts.fragments import PACK_LANGUAGES  # noqa: E402
from ivr.voice.pack import SYNTHETIC_DIR, make_synthetic_pack, manifest_text  # noqa: E402
from ivr.voice.tts import TTSError, get_engine  # noqa: E402

MANIFEST_PATH = ROOT / "ivr" / "data" / "voice_pack" / "manifest.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"pack directory (default: <IVR_AUDIO_CACHE_DIR>/{SYNTHETIC_DIR})")
    parser.add_argument("--lang", choices=PACK_LANGUAGES, action="append", help="only this language (repeatable)")
    parser.add_argument("--manifest", action="store_true", help=f"only rewrite {MANIFEST_PATH.relative_to(ROOT)}")
    parser.add_argument("--env-file", default=".env")
    args = parser.parse_args(argv)
    if args.manifest:
        MANIFEST_PATH.write_text(manifest_text("synthetic espeak-ng"), encoding="utf-8")
        print(f"wrote {MANIFEST_PATH}")
        return 0
    settings = load_settings(args.env_file)
    out = args.out or Path(settings.audio_cache_dir) / SYNTHETIC_DIR
    started = time.monotonic()
    try:
        pack = make_synthetic_pack(out, get_engine(settings), args.lang or PACK_LANGUAGES)
    except TTSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = sum(p.stat().st_size for p in out.rglob("*.wav"))
    count = sum(len(e) for e in pack.declared.values())
    print(f"wrote {count} fragments ({size / 1e6:.1f} MB) to {out} in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
