"""CLI: ``study lm`` (the language-model scaling study), ``study lm-transfer`` and ``noise-scale`` (B_simple on MNIST)."""

from __future__ import annotations

import json

from scalinglab.errors import ConfigError


def register(sub, study_sub) -> None:
    from scalinglab.cli.study import add_run_options

    st = study_sub.add_parser(
        "lm", help="language-model scaling on Shakespeare: IsoFLOP sweep, Approach 2 and 3 fits",
        description="Train the preset's tiny transformers (each to its own token budget, with its own "
                    "cosine schedule), record them in the run database, then fit Chinchilla's "
                    "Approaches 1, 2 and 3 with bootstrap intervals; the report adds the noise scale against "
                    "loss and learning-curve forecasts. Finished runs are skipped, so re-running resumes.")
    st.add_argument("--preset", default="quick", help="smoke | quick | full (default: quick)")
    st.add_argument("--out", help="folder for analysis.json and the report (default: study-lm-<preset>)")
    st.add_argument("--no-report", action="store_true", help="skip the HTML report")
    st.add_argument("--corpus", help="'shakespeare' (default), a text file or a folder of text files")
    st.add_argument("--tokenizer", choices=("bpe", "bytes"), help="override the preset's tokenizer")
    st.add_argument("--vocab-size", type=int, help="BPE vocabulary size (default: the preset's, 512)")
    st.add_argument("--precision", choices=("fp32", "bf16"),
                    help="override autocast (default: bf16 where the CPU has native bf16, else fp32)")
    st.add_argument("--schedule", choices=("cosine", "wsd"), default="cosine",
                    help="cosine: one schedule per run (default); wsd: per size one constant-LR trunk and a "
                         "cooldown branched from its checkpoint per budget (Hägele et al. 2024)")
    st.add_argument("--cooldown", type=float, default=0.2,
                    help="wsd: share of each run's steps spent cooling down (default: 0.2)")
    st.add_argument("--cooldown-shape", choices=("1-sqrt", "linear"), default="1-sqrt",
                    help="wsd: shape of the cooldown (default: 1-sqrt)")
    add_run_options(st)
    from scalinglab.cli.plan import add_adaptive_options

    add_adaptive_options(st)
    st.set_defaults(func=cmd_study_lm)

    tr = study_sub.add_parser(
        "lm-transfer", help="transfer from Shakespeare to Python code: effective data transferred D_T",
        description="Pre-train the preset's transformers on Shakespeare, fine-tune them on the Python standard "
                    "library's training files at several D_F and train the same sizes on code from scratch, in one "
                    "study; then fit D_T = k D_F^alpha N^beta (Hernandez et al. 2021) with bootstrap intervals. "
                    "Writes analysis.json, transfer.json and the report. Re-running resumes.")
    tr.add_argument("--preset", default="quick", help="smoke | quick (default: quick)")
    tr.add_argument("--out", help="folder for analysis.json, transfer.json and the report "
                                  "(default: study-lm-transfer-<preset>)")
    tr.add_argument("--no-report", action="store_true", help="skip the HTML report")
    add_run_options(tr)
    tr.set_defaults(func=cmd_study_lm_transfer)

    ns = sub.add_parser("noise-scale", help="measure the gradient noise scale B_simple along a training run",
                        description="Train an MNIST CNN for the given epochs, splitting each batch into "
                                    "small batches, and print B_simple (McCandlish et al. 2018) per segment.")
    ns.add_argument("family", choices=("mnist",), help="model family (mnist: the MNIST CNN)")
    ns.add_argument("--width", type=int, default=16, help="CNN width (default: 16)")
    ns.add_argument("--batch-size", type=int, default=128, help="images per step, B_big (default: 128)")
    ns.add_argument("--splits", type=int, default=4, help="small batches per step (default: 4, B_small = 32)")
    ns.add_argument("--epochs", type=int, default=1)
    ns.add_argument("--points", type=int, default=12, help="segments reported (default: 12)")
    ns.add_argument("--seed", type=int, default=0)
    ns.add_argument("--json", help="also write the rows to this JSON file")
    ns.set_defaults(func=cmd_noise_scale)


def cmd_study_lm(args) -> int:
    from scalinglab.cli.study import run_kwargs
    from scalinglab.families.lm.study import run_lm_study

    overrides = {}
    for flag, key in (("corpus", "corpus"), ("tokenizer", "tokenizer"), ("vocab_size", "vocab_size"),
                      ("precision", "precision")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    if args.schedule != "wsd" and (args.cooldown != 0.2 or args.cooldown_shape != "1-sqrt"):
        raise ConfigError("--cooldown and --cooldown-shape shape WSD cooldowns; add --schedule wsd")
    if args.adaptive and args.schedule == "wsd":
        raise ConfigError("--adaptive picks single runs; it does not combine with --schedule wsd (drop one)")
    if args.adaptive:  # the preset's runs are the candidates; a 3 x 3 seed design at their corners
        from scalinglab.cli.plan import cmd_adaptive_family
        from scalinglab.families.lm.study import lm_study_design

        name, design = lm_study_design(args.preset, overrides)
        return cmd_adaptive_family(args, "lm", design, f"lm-{args.preset}-adaptive")
    result = run_lm_study(args.preset, out=args.out, overrides=overrides, report=not args.no_report,
                          schedule=args.schedule, cooldown=args.cooldown, cooldown_shape=args.cooldown_shape,
                          **run_kwargs(args))
    print(result.describe())
    return result.exit_code


def cmd_study_lm_transfer(args) -> int:
    from scalinglab.cli.study import run_kwargs
    from scalinglab.families.lm.transfer import run_transfer_study

    result = run_transfer_study(args.preset, out=args.out, report=not args.no_report, **run_kwargs(args))
    print(result.describe())
    return result.exit_code


def cmd_noise_scale(args) -> int:
    from scalinglab.families.mnist.noise_scale import mnist_noise_scale

    for name in ("width", "batch_size", "splits", "epochs", "points"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} = {getattr(args, name)} is invalid: must be positive")
    if args.batch_size % args.splits:
        raise ConfigError(f"--batch-size ({args.batch_size}) must be a multiple of --splits ({args.splits})")
    rows = mnist_noise_scale(args.width, batch_size=args.batch_size, n_small=args.splits, epochs=args.epochs,
                             seed=args.seed, points=args.points)
    print(f"MNIST CNN width {args.width}: B_big = {args.batch_size}, B_small = {args.batch_size // args.splits}")
    print(f"{'images':>8} {'train loss':>10} {'test loss':>9} {'test acc':>8} {'|G|^2':>10} "
          f"{'tr(Sigma)':>10} {'B_simple':>9}")
    for r in rows:
        print(f"{r['images']:8d} {r['train_loss']:10.4f} {r['test_loss']:9.4f} {r['test_acc']:8.4f} "
              f"{r['g2']:10.4g} {r['trace']:10.4g} {r['b_simple']:9.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"width": args.width, "batch_size": args.batch_size, "splits": args.splits,
                       "rows": rows}, f, indent=1)
    return 0
