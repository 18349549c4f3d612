"""Train an MLP, a GCN or a character Transformer by backpropagation, DFA or the shallow baseline.

Usage::

    python scripts/train.py --model mlp --data digits --method dfa --feedback ideal --epochs 30 --json
    python scripts/train.py --model mlp --data digits --method dfa --feedback lab-bench --json
    python scripts/train.py --model gcn --data csbm --method dfa --epochs 200 --plot results/
    python scripts/train.py --model mlp --data mnist --data-path ~/data/mnist --backend cupy
    python scripts/train.py --model transformer --data pydoc --method dfa --steps 1500 --sample 300 --json
    python scripts/train.py --model transformer --data text --data-path book.txt --method bp

Every model trains through the one loop (``dfa_bridge.training.trainer.fit``, via
``run_experiment``): the MLP and the GCN for ``--epochs``, the Transformer for
``--steps`` (giving the other one is an error).

``--feedback`` is ``ideal`` (a seeded Gaussian matrix, no device) or any device
``devices.open_device`` takes (``lab-bench``, ``datacenter-opu``, a YAML path,
``device:ideal``): the error is then encoded into binary frames (``--encoder``) and
projected through the device's physics. It defaults to ``ideal`` for ``dfa``; ``bp`` and
``shallow`` need none (given one, an MLP or a GCN logs the weights-vs-feedback angle).
Prints the result (test accuracy, training loss, epochs, seconds, final per-layer
alignment angles in degrees; a ``dfa`` run's update-vs-gradient angles) as one JSON
object with ``--json``; ``--plot DIR`` saves the learning and alignment curves as PNG.
``--model transformer`` (4 blocks x 128, 4 heads, context 64 by default) prints the
validation perplexity per character, the seconds, the per-block alignment (``dfa``) and,
with ``--sample N``, N characters sampled from the trained model.
"""

from __future__ import annotations

import argparse
import pathlib

from dfa_bridge.data import DATASET_NAMES
from dfa_bridge.data.text import TEXT_DATASETS
from dfa_bridge.nn.optim import OPTIMIZERS
from studies.plots import plot_alignment_curves, plot_learning_curves
from photon.support.jsonio import dumps, write_json
from dfa_bridge.training.experiment import run_experiment
from dfa_bridge.training.families import FAMILIES, family, family_names
from dfa_bridge.training.feedback import ENCODERS
from dfa_bridge.training.trainer import FEEDBACK_MODES, METHODS
from photon.support.arrays import BACKENDS
from ._parser import CommandParser, fraction, int_in, non_negative_float, non_negative_int, positive_float, positive_int, seed

__all__ = ["main"]


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated widths, e.g. 256,256")
    return widths


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(FAMILIES), default="mlp")
    parser.add_argument("--data", choices=DATASET_NAMES + TEXT_DATASETS,
                        help="default: digits (mlp, gcn), pydoc (transformer)")
    parser.add_argument("--data-path", help="directory of your own files (mnist, pubmed; cora "
                        "and citeseer ship embedded and a directory replaces them) or a UTF-8 "
                        "text file (text)")
    parser.add_argument("--data-seed", type=seed, default=0, help="seed of generated data and splits")
    parser.add_argument("--method", choices=METHODS, default="dfa")
    parser.add_argument("--feedback",
                        help="'ideal' or a device: preset, YAML path, device:BACKEND (default: "
                             "ideal for dfa; none for bp and shallow, which given one only log "
                             "the weights-vs-feedback angle)")
    parser.add_argument("--encoder", choices=ENCODERS, default=None,
                        help="error encoding for a device (default: each model's own, bitplanes "
                             "with --bits per sign for all three)")
    parser.add_argument("--bits", type=int_in(1, 16), default=4, help="bits per sign for --encoder bitplanes")
    parser.add_argument("--epochs", type=positive_int,
                        help="epochs of the mlp (default 30) or the gcn (default 200); the "
                             "transformer trains in --steps")
    parser.add_argument("--seed", type=seed, default=0, help="seed of weights, feedback and order")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy")
    parser.add_argument("--hidden", type=_widths, help="hidden widths, e.g. 256,256")
    parser.add_argument("--activation", choices=("tanh", "relu"))
    parser.add_argument("--dropout", type=fraction)
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS))
    parser.add_argument("--lr", type=positive_float)
    parser.add_argument("--weight-decay", type=non_negative_float)
    parser.add_argument("--batch-size", type=positive_int,
                        help="samples per step (mlp, default 32) or windows per step "
                             "(transformer, default 16)")
    parser.add_argument("--max-train", type=positive_int, help="keep the first N training samples (mlp)")
    transformer = parser.add_argument_group("transformer")
    transformer.add_argument("--steps", type=positive_int,
                             help="training steps (default 1500); the mlp and the gcn train in "
                                  "--epochs")
    transformer.add_argument("--blocks", type=positive_int, help="number of blocks (default 4)")
    transformer.add_argument("--width", type=positive_int, help="model width (default 128)")
    transformer.add_argument("--heads", type=positive_int, help="attention heads (default 4)")
    transformer.add_argument("--context", type=positive_int, help="context length (default 64)")
    transformer.add_argument("--tied", action="store_true", default=None,
                             help="tie the output projection to the token embedding")
    transformer.add_argument("--feedback-mode", choices=FEEDBACK_MODES,
                             help="shared: the same signal for every block (default); "
                             "sliced: one slice of the projection per block")
    transformer.add_argument("--eval-chars", type=positive_int,
                             help="validation characters to score (default: all)")
    transformer.add_argument("--sample", type=non_negative_int, default=0, metavar="N",
                             help="print N characters sampled from the trained model")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="DIR",
                        help="save learning and alignment curves as PNG (mlp, gcn)")
    args = parser.parse_args(argv)
    if args.plot and family(args.model).budget != "epochs":
        parser.error(f"--plot: expected --model {' or '.join(family_names(budget='epochs'))} "
                     "(the plots draw accuracy per epoch)")
    if args.plot:  # checked before training, so that no result is lost to a bad path
        directory = pathlib.Path(args.plot)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            parser.error(f"--plot {args.plot}: {error.strerror or error}: expected a directory "
                         "that can be created")
    try:
        result, history = run_experiment(
            args.model, args.data, args.method, args.feedback, epochs=args.epochs,
            steps=args.steps, seed=args.seed, data_seed=args.data_seed,
            data_path=args.data_path, backend=args.backend, encoder=args.encoder,
            n_bits=args.bits, max_train=args.max_train, max_eval_chars=args.eval_chars,
            n_sample=args.sample, hidden=args.hidden, activation=args.activation,
            dropout=args.dropout, optimizer=args.optimizer, lr=args.lr,
            weight_decay=args.weight_decay, batch_size=args.batch_size, n_blocks=args.blocks,
            width=args.width, heads=args.heads, context=args.context, tied=args.tied,
            feedback_mode=args.feedback_mode)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    if args.plot:  # the result first, then the figures
        feedback = args.feedback or ("ideal" if args.method == "dfa" else "none")
        stem = f"{args.model}_{args.data or 'digits'}_{args.method}_{pathlib.Path(feedback).stem}"
        result["plots"] = [str(directory / f"{stem}_learning.png"),
                           str(directory / f"{stem}_alignment.png")]
        write_json(directory / f"{stem}.json", result, indent=2)
        plot_learning_curves({args.method: history}, directory / f"{stem}_learning.png")
        plot_alignment_curves(history, directory / f"{stem}_alignment.png", stem)
    if args.json:
        print(dumps(result, indent=2))
        return 0
    if family(args.model).is_language:
        _print_transformer(result)
    else:
        _print_classifier(result)
    return 0


def _source(result: dict) -> str:
    return result["feedback"]["source"] if result["feedback"] else "no feedback"


def _print_classifier(result: dict) -> None:
    """The MLP's or the GCN's accuracy, loss and alignment."""
    alignment = result["alignment_deg"]
    print(f"{result['model']} on {result['data']['name']}, {result['method']} ({_source(result)}), "
          f"{result['epochs']} epochs in {result['seconds']:.1f} s")
    print(f"  test accuracy {100 * result['test_accuracy']:.2f} %, training loss "
          f"{result['train_loss']:.4f}")
    if alignment["update_vs_gradient"] is not None:
        print("  alignment (degrees, per hidden layer): update vs gradient "
              f"{[round(a, 1) for a in alignment['update_vs_gradient']]}, weights vs feedback "
              f"{[round(a, 1) for a in alignment['weights_vs_feedback']]}")
    elif alignment["weights_vs_feedback"] is not None:
        print("  alignment (degrees, per hidden layer): weights vs feedback "
              f"{[round(a, 1) for a in alignment['weights_vs_feedback']]}")


def _print_transformer(result: dict) -> None:
    """The Transformer's perplexity, alignment and sample."""
    angles = result["alignment_deg"]["update_vs_gradient"]
    print(f"transformer on {result['data']['name']}, {result['method']} ({_source(result)}), "
          f"{result['steps']} steps in {result['seconds']:.1f} s")
    print(f"  validation perplexity {result['val_perplexity']:.3f} per character (unigram "
          f"{result['unigram_perplexity']:.2f}), training loss {result['train_loss']:.4f}")
    if angles is not None:
        print(f"  alignment (degrees, per block): update vs gradient {[round(a, 1) for a in angles]}")
    if "sample" in result:
        print("  sample:")
        print(result["sample"])
