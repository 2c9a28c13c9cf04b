"""FreSh on audio: the W curve under the published spectrum and the signal spectrum, and the fits.

Signals: ../shared/data/audio/bach.wav whole (7 s), its first 1 s and 3 s, and a synthetic clip
(1 s at 44.1 kHz, tones at 220, 660 and 1760 Hz). For each, the W curve of a SIREN (3 hidden layers
of ``--width``) over the clip's default audio grid, every value with ``--inits`` initialisations, with
the published spectrum (the lowest 64 DFT frequencies of the clip) and with the signal spectrum
(the default). Then the first 1 s (``--steps-1s`` steps) and 3 s (``--steps-3s``) are fitted at
each spectrum's choice and at the default omega_0 = 30, 10 % held out, and the SNR on the
waveform reported. Writes results/audio_fresh.json and the figure docs/audio_w_curves.png.

    python benchmarks/audio_fresh.py [--width 128] [--inits 4] [--steps-1s 300] [--steps-3s 200]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _common import ROOT, require_data, write_result
from scipy.io import wavfile

import specfit
from specfit.figures import subplots
from specfit.kinds.registry import task_for
from specfit.models.registry import get_entry

RATE = 44100


def _clips() -> dict[str, np.ndarray]:
    rate, wave = wavfile.read(require_data("audio/bach.wav"))
    assert rate == RATE
    t = np.arange(RATE) / RATE
    tones = sum(a * np.sin(2 * np.pi * f * t + p) for a, f, p in ((0.5, 220, 0.0), (0.3, 660, 1.0),
                                                                   (0.2, 1760, 2.0)))
    return {"bach 7 s": wave, "bach 1 s": wave[:RATE], "bach 3 s": wave[: 3 * RATE],
            "tones 1 s": tones.astype(np.float32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--inits", type=int, default=4)
    parser.add_argument("--steps-1s", type=int, default=300)
    parser.add_argument("--steps-3s", type=int, default=200)
    parser.add_argument("--no-fits", action="store_true")
    args = parser.parse_args()
    shape = {"width": args.width}
    knob = get_entry("siren").knob
    curves, fits = {}, []
    for name, wave in _clips().items():
        signal = specfit.load_signal(wave, kind="audio", sample_rate=RATE)
        grid = task_for(signal).default_grid(knob.grid, False)
        curves[name] = {"grid": grid, "seconds": len(wave) / RATE}
        for spectrum in ("published", "signal"):
            selection = specfit.select(signal, "siren", grid=grid, inits=args.inits, spectrum=spectrum,
                                       search="full", race=False, device="cpu", **shape)
            curves[name][spectrum] = {"chosen": selection.chosen,
                                      "w": [row.w_mean for row in selection.table],
                                      "stderr": [row.w_stderr for row in selection.table]}
            print(f"{name:<10} {spectrum:<9} omega_0 = {selection.chosen:<8g} "
                  f"({selection.chosen / (len(wave) / RATE):.0f} per second)", flush=True)
    if not args.no_fits:
        for name, steps in (("bach 1 s", args.steps_1s), ("bach 3 s", args.steps_3s)):
            signal = specfit.load_signal(_clips()[name], kind="audio", sample_rate=RATE)
            values = {"signal spectrum": curves[name]["signal"]["chosen"],
                      "published spectrum": curves[name]["published"]["chosen"], "default": 30.0}
            for label, value in values.items():
                run = specfit.fit(signal, "siren", steps=steps, device="cpu", omega_0=value, **shape)
                m = run.metrics.scores
                fits.append({"clip": name, "steps": steps, "choice": label, "omega_0": value,
                             "snr": m["snr"], "snr_train": m["snr_train"], "snr_test": m["snr_test"],
                             "train_seconds": run.metrics.train_seconds})
                print(f"{name:<10} {label:<19} omega_0 = {value:<8g} SNR {m['snr']:6.2f} dB "
                      f"(held-out {m['snr_test']:.2f}) after {steps} steps", flush=True)
    figure, axes = subplots(1, len(curves), figsize=(4.2 * len(curves), 3.6), sharey=False)
    for axis, (name, curve) in zip(np.atleast_1d(axes), curves.items(), strict=True):
        for spectrum, style in (("published", "--"), ("signal", "-")):
            color = "C0" if spectrum == "published" else "C1"
            axis.plot(curve["grid"], curve[spectrum]["w"], style, color=color, marker="o", ms=3,
                      label=f"{spectrum} spectrum")
            axis.axvline(curve[spectrum]["chosen"], ls=style, color=color, alpha=0.6)
        axis.set_xscale("log")
        axis.set_title(name)
        axis.set_xlabel("omega_0 (clip on [-1, 1])")
        axis.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("mean W (target vs init)")
    np.atleast_1d(axes)[0].legend()
    figure.tight_layout()
    path = ROOT / "docs" / "audio_w_curves.png"
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")
    out = write_result("audio_fresh", {"width": args.width, "inits": args.inits, "curves": curves,
                                       "fits": fits})
    print(f"wrote {out}")
    chosen = {name: {s: c[s]["chosen"] for s in ("published", "signal")} for name, c in curves.items()}
    print(json.dumps(chosen))


if __name__ == "__main__":
    main()
