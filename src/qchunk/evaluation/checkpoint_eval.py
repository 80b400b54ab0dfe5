"""``qchunk eval RUN_DIR``: re-evaluate a checkpoint of a training run, optionally recording MP4 videos.

The agent is rebuilt from ``RUN_DIR/config.json`` (its ``"agent"`` section, through
:func:`qchunk.agents.make_agent`) and its parameters are loaded from
``checkpoints/step_XXXXXXXXXX/agent.msgpack``. Episodes run exactly as the trainer's evaluations do
(:func:`qchunk.evaluation.run_episodes`: every episode stepped together, one batched policy query per
chunk, chunks executed open-loop); with ``--video`` the environments live in this process and render a
frame after every step, which leaves the episodes unchanged (same ``episodes.csv`` with or without videos).

Outputs, in ``RUN_DIR/eval/step_XXXXXXXXXX/`` (the checkpoint's name) unless ``--out`` says otherwise,
each written atomically (an eval replaces the previous one in that folder):

* ``episodes.csv``: ``episode, seed, success, return, length``, one row per episode;
* ``summary.json``: the checkpoint, the settings and the means;
* ``videos/episode_000.mp4`` ...: one H.264 video per episode, one frame per environment step.

Rendering is offscreen through MuJoCo: EGL when ``libEGL`` is present, else OSMesa when ``libOSMesa`` is
(an explicit ``MUJOCO_GL`` other than ``disable`` wins). On Debian/Ubuntu, CPU rendering needs
``libegl1 libgl1-mesa-dri`` (EGL with Mesa's software driver), or ``libosmesa6`` with ``MUJOCO_GL=osmesa``.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes.util
import io
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro

from qchunk.dir_lock import hold
from qchunk.errors import QchunkError, require
from qchunk.evaluation.eval_out import check_eval_out
from qchunk.evaluation.pool import LocalEnvs
from qchunk.fileio import atomic_write_json, atomic_write_text, temp_file

_DISABLED_GL = ("", "disable", "disabled", "off", "false", "0")
_RENDER_PACKAGES = "on Debian/Ubuntu: apt-get install libegl1 libgl1-mesa-dri (or libosmesa6 and set MUJOCO_GL=osmesa)"


@dataclass
class EvalArgs:
    """Re-evaluate a checkpoint of a training run (default: the newest), optionally recording MP4 videos."""

    run_dir: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="RUN_DIR")]
    """A run directory written by `qchunk train` (holds config.json and checkpoints/)."""
    checkpoint: int | None = None
    """Global step of the checkpoint to load (a `checkpoints/step_*` directory). Default: the newest."""
    episodes: int = 10
    """Evaluation episodes."""
    video: bool = False
    """Record one MP4 per episode under OUT/videos/ (renders offscreen; needs libEGL or libOSMesa)."""
    out: str | None = None
    """Output directory. Default: `RUN_DIR/eval/step_XXXXXXXXXX` (the checkpoint's name). It may hold an
    earlier evaluation (replaced), nothing else; one process at a time (locked)."""
    seed: int = 0
    """Evaluation seed: the episodes' reset seeds and the policy's key derive from the run's seed and this."""
    episode_length: int | None = None
    """Time limit of an episode. Default: the run's."""
    workers: int | None = None
    """Processes that run the episodes without --video (default: all cores; --video runs them here)."""
    size: tuple[int, int] = (256, 256)
    """Video frame height and width in pixels."""
    fps: int | None = None
    """Video frame rate. Default: the environment's control rate (20 for OGBench)."""
    quality: Literal["fast", "full"] = "fast"
    """`fast` renders without shadows and reflections (several times faster on a CPU); `full` renders the
    scene as the environment defines it."""


@dataclass(frozen=True)
class EpisodeRecord:
    """One evaluation episode."""

    episode: int
    seed: int
    success: bool
    episode_return: float
    length: int


# ----------------------------------------------------------------------------- rendering and videos
def select_render_backend() -> str:
    """Choose MuJoCo's offscreen OpenGL backend before MuJoCo is imported: an explicit ``MUJOCO_GL`` (other
    than ``disable``, which :mod:`qchunk.envs` sets without libEGL), else EGL if ``libEGL`` is found, else
    OSMesa if ``libOSMesa`` is. Returns the backend name.

    Raises:
        QchunkError: no backend is available.
    """
    import qchunk.envs  # noqa: F401 - sets MUJOCO_GL ("egl", or "disable" without libEGL)

    gl = os.environ.get("MUJOCO_GL", "").strip().lower()
    if gl in _DISABLED_GL and "mujoco" not in sys.modules:
        if ctypes.util.find_library("EGL"):
            gl = "egl"
        elif ctypes.util.find_library("OSMesa"):
            gl = "osmesa"
            os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
        os.environ["MUJOCO_GL"] = gl
    require(gl not in _DISABLED_GL, f"--video needs offscreen rendering but neither libEGL nor libOSMesa was found "
                                    f"(MUJOCO_GL={os.environ.get('MUJOCO_GL', '')!r}); {_RENDER_PACKAGES}")
    return gl


def _no_shadows(scene) -> None:
    import mujoco

    scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False


class _Renderer:
    """Renders one env: through the unwrapped OGBench env (to drop shadows in ``fast`` quality) or ``env.render()``."""

    def __init__(self, env, quality: str):
        import inspect

        inner = env.unwrapped
        try:
            params = inspect.signature(inner.render).parameters
        except (TypeError, ValueError):
            params = {}
        # OGBench's render(camera=None, *args, **kwargs) forwards scene_callback to its MuJoCo renderer
        takes_callback = "scene_callback" in params or (hasattr(inner, "model") and any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()))
        self._render = ((lambda: inner.render(scene_callback=_no_shadows)) if quality == "fast" and takes_callback
                        else env.render)

    def __call__(self) -> np.ndarray:
        try:
            frame = self._render()
        except QchunkError:
            raise
        except Exception as e:  # any GL failure is the same user problem
            raise QchunkError(f"offscreen rendering failed (MUJOCO_GL={os.environ.get('MUJOCO_GL')}: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                              f"{_RENDER_PACKAGES}") from None
        if frame is None or np.ndim(frame) != 3:
            raise QchunkError("the environment returned no RGB frame; it does not support render_mode='rgb_array'")
        return np.asarray(frame, np.uint8)


def _video_writer_module():
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401 - the ffmpeg binary imageio writes MP4 with
    except ImportError:
        raise QchunkError("--video needs the video extra (imageio, imageio-ffmpeg): "
                          f"{Path(sys.executable).parent / 'pip'} install 'qchunk[video]'") from None
    return imageio


class _Videos:
    """One MP4 writer per episode, fed frame by frame; a finished file is renamed into place (atomic)."""

    def __init__(self, folder: Path, fps: int):
        self.folder, self.fps = folder, fps
        self.imageio = _video_writer_module()
        self._open: dict[int, tuple[Any, Path]] = {}
        self.written: dict[int, Path] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def append(self, episode: int, frame: np.ndarray) -> None:
        with warnings.catch_warnings():
            # the writer starts an ffmpeg process (fork + exec at once); JAX's fork warning does not apply
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            self._append(episode, frame)

    def _append(self, episode: int, frame: np.ndarray) -> None:
        if episode not in self._open:
            tmp = temp_file(self.folder, f".episode_{episode:03d}.", ".tmp.mp4")  # a normal write's mode
            writer = self.imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                                             pixelformat="yuv420p", quality=7, macro_block_size=2,
                                             ffmpeg_log_level="error")
            self._open[episode] = (writer, Path(tmp))
        self._open[episode][0].append_data(frame)

    def finish(self, episode: int) -> None:
        writer, tmp = self._open.pop(episode)
        writer.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        final = self.folder / f"episode_{episode:03d}.mp4"
        os.replace(tmp, final)
        self.written[episode] = final

    def abort(self) -> None:
        for writer, tmp in self._open.values():
            with contextlib.suppress(Exception):
                writer.close()
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._open.clear()


class _InProcessEnvs(LocalEnvs):
    """The rendering environments, in this process (their GL contexts are freed explicitly on close)."""

    def close(self) -> None:
        for env in self.envs:
            # free the GL context now: at interpreter exit EGL may already be gone and MuJoCo would complain
            renderer = getattr(env.unwrapped, "_renderer", None)
            if renderer is not None and hasattr(renderer, "close"):
                with contextlib.suppress(Exception):
                    renderer.close()
                env.unwrapped._renderer = None
            env.close()


# ----------------------------------------------------------------------------- the evaluation
def evaluation_seeds(train_seed: int, seed: int, episodes: int) -> list[int]:
    """Reset seeds of a re-evaluation: fixed by the run's seed and ``seed``, distinct from training's."""
    return [int(s) for s in np.random.SeedSequence([train_seed, 0x2E7A1, seed]).generate_state(episodes)]


def evaluate_checkpoint(args: EvalArgs) -> dict[str, Any]:
    """Run ``args`` (see :class:`EvalArgs`); write episodes.csv, summary.json and videos; return the summary.

    Raises:
        QchunkError: a missing or foreign run directory or checkpoint, a bad option, or no offscreen renderer.
    """
    from qchunk.training.run_dir import RunDir

    run = RunDir(args.run_dir)
    run_dir = run.path
    require(run_dir.is_dir(), f"run dir {run_dir} does not exist")
    train = run.read().train
    require(args.checkpoint is None or args.checkpoint >= 0, f"--checkpoint must be >= 0, got {args.checkpoint}")
    require(args.episodes >= 1, f"--episodes must be >= 1, got {args.episodes}")
    require(args.episode_length is None or args.episode_length >= 1, "--episode-length must be >= 1")
    require(args.workers is None or args.workers >= 1, "--workers must be >= 1")
    require(min(args.size) >= 16, f"--size must be at least 16 16 pixels, got {args.size[0]} {args.size[1]}")
    require(args.fps is None or args.fps >= 1, "--fps must be >= 1")
    if args.out:
        check_eval_out(Path(args.out).expanduser())  # the user's files: refused before any work
    # verified against its manifest, exact agent config; one line names it (and any newer one skipped)
    agent, ckpt = run.load_agent(args.checkpoint, say=lambda line: print(line, file=sys.stderr, flush=True),
                                 user="evaluating")
    out = Path(args.out).expanduser() if args.out else run_dir / "eval" / ckpt.path.name
    check_eval_out(out)  # replaces only an earlier evaluation, never the user's files
    with hold(out, "--out"):  # one writer; a failed evaluation leaves no empty folders behind
        return _evaluate_into(args, run_dir, train, agent, ckpt, out)


def _evaluate_into(args: EvalArgs, run_dir: Path, train, agent, ckpt, out: Path) -> dict[str, Any]:
    backend = None
    if args.video:
        _video_writer_module()
        backend = select_render_backend()

    import jax
    import jax.numpy as jnp

    from qchunk.envs import make_env
    from qchunk.evaluation import EnvPool, run_episodes

    episode_length = args.episode_length or train.episode_length
    task = train.task
    n = args.episodes
    sparse = bool(train.sparse)
    workers = 1 if args.video else min(n, args.workers or os.cpu_count() or 1)
    if workers == 1:  # in this process (always with --video: the frames are drawn here)
        render = {"render_mode": "rgb_array", "render_size": tuple(args.size)} if args.video else {}
        envs = [make_env(task, sparse, episode_length, dataset_dir=train.dataset_dir, **render)
                for _ in range(n)]
        inner, probe = _InProcessEnvs(envs), envs[0]
    else:
        probe = make_env(task, sparse, episode_length, dataset_dir=train.dataset_dir)
    obs_dim, act_dim = int(np.prod(probe.observation_space.shape)), int(np.prod(probe.action_space.shape))
    fps = args.fps or int(probe.metadata.get("render_fps") or 20)
    if workers > 1:
        probe.close()
        inner = EnvPool(task, sparse, n, workers, episode_length, dataset_dir=train.dataset_dir)
    videos = None
    try:
        require((obs_dim, act_dim) == (agent.observation_dim, agent.action_dim),
                f"{ckpt.path} holds an agent for observations/actions of size {agent.observation_dim}/"
                f"{agent.action_dim}, the environment has {obs_dim}/{act_dim}")
        key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(train.seed), 0x2E7A1), args.seed)

        def policy(obs: np.ndarray) -> np.ndarray:
            nonlocal key
            key, sub = jax.random.split(key)
            return np.asarray(agent.eval_actions(jnp.asarray(obs), sub))  # the trainer's evaluation policy

        seeds = evaluation_seeds(train.seed, args.seed, n)
        if args.video:  # one environment per episode here, so environment i plays episode i
            videos = _Videos(out / "videos", fps)
            renderers = [_Renderer(env, args.quality) for env in envs]

            def record(i: int, done: bool) -> None:
                videos.append(i, renderers[i]())
                if done:
                    videos.finish(i)

            inner.after_step = record
        t0 = time.perf_counter()
        result = run_episodes(policy, inner, seeds)
        seconds = time.perf_counter() - t0
    except BaseException:
        if videos is not None:
            videos.abort()
        raise
    finally:
        inner.close()

    records = [EpisodeRecord(i, seeds[i], result.successes[i] == 1, result.returns[i], result.lengths[i])
               for i in range(n)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["episode", "seed", "success", "return", "length"])
    for r in records:
        writer.writerow([r.episode, r.seed, int(r.success), f"{r.episode_return:.6g}", r.length])
    atomic_write_text(out / "episodes.csv", buf.getvalue())
    for stale in (out / "videos").glob("episode_*.mp4"):
        m = re.fullmatch(r"episode_(\d+)\.mp4", stale.name)
        if m and (videos is None or int(m[1]) not in videos.written):
            stale.unlink()
    summary = {
        "run_dir": str(run_dir), "checkpoint_step": ckpt.step, "checkpoint": str(ckpt.path),
        "agent": agent.config.agent, "env": train.env, "sparse": sparse,
        "episodes": n, "episode_length_limit": episode_length, "seed": args.seed,
        "success": result.success, "return": result.episode_return, "episode_length": result.episode_length,
        "policy_queries": result.policy_queries, "seconds": round(seconds, 3),
        "video": None if videos is None else {
            "files": [str(videos.written[i].relative_to(out)) for i in sorted(videos.written)],
            "fps": fps, "size": list(args.size), "quality": args.quality, "backend": backend},
    }
    atomic_write_json(out / "summary.json", summary)
    summary["out"] = str(out)
    return summary


def run_eval(args: EvalArgs) -> int:
    """The ``qchunk eval`` command."""
    s = evaluate_checkpoint(args)
    files = "episodes.csv, summary.json" + (", videos/" if s["video"] else "")
    success = "no success signal" if s["success"] != s["success"] else f"success {100 * s['success']:.0f}%"  # NaN
    print(f"{s['agent']} on {s['env']}, checkpoint at step {s['checkpoint_step']}: {success} "
          f"over {s['episodes']} episodes (mean return {s['return']:.2f}, mean length {s['episode_length']:.1f}) "
          f"in {s['seconds']:.1f} s; wrote {s['out']} ({files})")
    return 0
