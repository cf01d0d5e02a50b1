"""python -m sluice_jax --data <dir|prefix> --out <dir> [--device cpu|gpu|auto]

Exit status: 0 trained (result.json written), 2 malformed input or usage, 3 device unavailable,
4 stdin closed under --watch-stdin (the parent is gone), 1 anything else (a traceback).
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from .contract import ContractError, read_dataset, read_spec, write_json_atomic, write_npy

EXIT_INPUT = 2
EXIT_DEVICE = 3
EXIT_PARENT_GONE = 4


def _log(message: str) -> None:
    print(f'sluice_jax: {message}', file=sys.stderr, flush=True)


def _exit_when_stdin_closes() -> None:
    """A parent that dies (even by SIGKILL) closes the pipe: the trainer must not outlive it."""

    def watch() -> None:
        # os.read on the descriptor, not sys.stdin: a daemon thread holding the buffered reader's
        # lock would abort the interpreter's shutdown after a normal end
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        os._exit(EXIT_PARENT_GONE)

    threading.Thread(target=watch, name='stdin-watch', daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m sluice_jax', description='Train the trials of <data>/spec.json on <data>/X.npy, y.npy; write <out>/result.json. See CONTRACT.md.')
    parser.add_argument('--data', required=True, help='directory holding spec.json, X.npy, y.npy (...), or a file prefix such as /tmp/run/train_')
    parser.add_argument('--out', required=True, help='output directory (created if missing)')
    parser.add_argument('--device', choices=('cpu', 'gpu', 'auto'), help='overrides spec.json "device"')
    parser.add_argument('--quiet', action='store_true', help='no progress lines on stderr')
    parser.add_argument('--watch-stdin', action='store_true', help='exit at once when stdin closes (the parent process is gone)')
    args = parser.parse_args(argv)
    if args.watch_stdin:
        _exit_when_stdin_closes()
    log = (lambda message: None) if args.quiet else _log
    started = time.perf_counter()
    try:
        spec, spec_sha256 = read_spec(args.data)
        requested = args.device or spec.device
        if requested == 'cpu' and 'jax' not in sys.modules:
            # keep JAX off any GPU (no CUDA start-up, no memory preallocation)
            os.environ['JAX_PLATFORMS'] = 'cpu'
        dataset = read_dataset(args.data, spec, spec_sha256)
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise ContractError(f'--out {args.out} exists and is not a directory')
        os.makedirs(args.out, exist_ok=True)
    except ContractError as error:
        print(f'sluice_jax: invalid input: {error}', file=sys.stderr)
        return EXIT_INPUT
    except OSError as error:
        print(f'sluice_jax: invalid input: cannot create --out {args.out}: {error.strerror or error}', file=sys.stderr)
        return EXIT_INPUT

    import jax

    jax.config.update('jax_enable_x64', False)  # float32 training, as TF.js and the ONNX graph
    from .train import DeviceError, select_device, train

    try:
        device = select_device(requested)
    except DeviceError as error:
        print(f'sluice_jax: {error}', file=sys.stderr)
        return EXIT_DEVICE
    log(f'{dataset.X.shape[0]} rows x {dataset.X.shape[1]} features, {len(spec.trials)} trial(s) on {device.platform} ({device.device_kind})')
    result, scores = train(dataset, spec, device, requested, log)
    if spec.write_scores:
        for split, values in scores.items():
            write_npy(os.path.join(args.out, f'scores_{"val" if split == "validation" else split}.npy'), values)
    path = os.path.join(args.out, 'result.json')
    write_json_atomic(path, result)
    timing = result['timing']
    log(f'done in {time.perf_counter() - started:.2f}s (compile {timing["compileSeconds"]:.2f}s, train {timing["trainSeconds"]:.2f}s); wrote {path}')
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
