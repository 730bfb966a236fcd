"""CLI: ``spectrum`` (singular values of a data matrix) and ``zipf`` (word and subword frequencies)."""

from __future__ import annotations

import json
from pathlib import Path

from scalinglab.errors import ConfigError


def register(sub, study_sub) -> None:
    p = sub.add_parser(
        "spectrum", help="power law in the singular values of a data matrix",
        description="Singular values of a data matrix (one sample per row), a power-law fit over a rank "
                    "range chosen by the data, a row-bootstrap interval on the exponent, and a Gaussian "
                    "random matrix of the same shape (with the Marchenko-Pastur law) as a reference.")
    p.add_argument("dataset", metavar="DATASET",
                   help="'mnist', 'gaussian:ROWSxCOLS', or a .npy/.npz/.csv/.tsv/.txt matrix file")
    p.add_argument("--center", action="store_true",
                   help="subtract the column means first (default: the raw, uncentred matrix, as in the lecture)")
    p.add_argument("--key", help="which array of a .npz file to use")
    p.add_argument("--bootstrap", type=int, default=200, metavar="N",
                   help="row-bootstrap replicates for the interval (default: 200; 0 to skip)")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default: 0.95)")
    p.add_argument("--max-memory", default="1G", metavar="SIZE",
                   help="largest matrix (as float64) decomposed exactly in memory, e.g. 512M (default: 1G); "
                        "larger matrices are streamed and get a randomized SVD")
    p.add_argument("--rank", type=int,
                   help="singular values the randomized SVD estimates (default: 200)")
    p.add_argument("--power-iterations", type=int, default=4, help="randomized SVD passes (default: 4)")
    p.add_argument("--no-reference", action="store_true", help="skip the Gaussian reference matrix")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plot", metavar="PNG", help="save a log-log plot of the spectrum and fit")
    p.set_defaults(func=cmd_spectrum)

    z = sub.add_parser(
        "zipf", help="Zipf's law in word and BPE subword frequencies",
        description="Count words and BPE subwords of a corpus (streamed), and fit the Zipf exponent two ways: "
                    "least squares in log-log space and the discrete power-law MLE with x_min chosen by the "
                    "KS distance (powerlaw package), with a goodness-of-fit p-value and a lognormal comparison.")
    z.add_argument("corpus", metavar="CORPUS", help="'shakespeare', a text file, or a folder of text files")
    z.add_argument("--vocab-sizes", default="8000", metavar="LIST",
                   help="comma list of BPE vocabulary sizes for subword counts, e.g. 2000,8000 "
                        "(default: 8000; 'none' for words only)")
    z.add_argument("--no-words", action="store_true", help="only subwords")
    z.add_argument("--letters-only", action="store_true",
                   help="words are runs of letters, digits separate them (default: letters and digits, "
                        "so ids such as sku1009 stay distinct words)")
    z.add_argument("--bootstrap", type=int, default=100, metavar="N",
                   help="bootstrap resamples of the types for the intervals (default: 100)")
    z.add_argument("--gof-samples", type=int, default=100, metavar="N",
                   help="synthetic sets for the goodness-of-fit p-value (default: 100)")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--json", action="store_true", help="print the result as JSON")
    z.add_argument("--plot", metavar="PNG", help="save rank-frequency and CCDF plots with both fits")
    z.set_defaults(func=cmd_zipf)


def cmd_spectrum(args) -> int:
    from scalinglab.analysis.spectrum import analyse_spectrum, format_spectrum, parse_bytes, plot_spectrum

    result = analyse_spectrum(args.dataset, center=args.center, n_bootstrap=args.bootstrap, level=args.level,
                              max_memory=parse_bytes(args.max_memory), rank=args.rank,
                              power_iterations=args.power_iterations, reference=not args.no_reference,
                              seed=args.seed, key=args.key)
    if args.plot:
        _save(plot_spectrum(result), args.plot)
    print(json.dumps(result.to_dict(), indent=1) if args.json else format_spectrum(result))
    return 0


def cmd_zipf(args) -> int:
    from scalinglab.analysis.zipf import analyse_corpus, format_zipf, plot_zipf

    sizes = _int_list(args.vocab_sizes, "--vocab-sizes")
    results = analyse_corpus(args.corpus, vocab_sizes=sizes, words=not args.no_words,
                             n_bootstrap=args.bootstrap, n_gof=args.gof_samples, seed=args.seed,
                             letters_only=args.letters_only)
    if args.plot:
        _save(plot_zipf(results, title=f"Zipf plot: {args.corpus}"), args.plot)
    if args.json:
        doc = {**results[0].to_dict(), "corpus": args.corpus, "analyses": [r.to_dict() for r in results]}
        print(json.dumps(doc, indent=1))
    else:
        print(f"corpus: {args.corpus}  (alpha: exponent of P(count = x) ~ x^-alpha; "
              "s: Zipf exponent of f_r ~ r^-s; alpha = 1 + 1/s)")
        print("\n".join(format_zipf(r) for r in results))
    return 0


def _int_list(text: str, flag: str) -> list[int]:
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes a comma list of integers such as 2000,8000, got {text!r}") from None


def _save(fig, path: str) -> None:
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    except OSError as exc:
        raise ConfigError(f"cannot write the plot to {out} ({exc.strerror or exc}); choose a writable path") \
            from exc
