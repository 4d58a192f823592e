// One reply's audio: a wavesurfer.js waveform drawn from the precomputed peaks (so it shows
// before any audio loads), playback through a streaming media element, and a record of which
// parts were actually heard. Listening is counted in 1% bins while playing forward; a seek is
// a jump, never listening.

import WaveSurfer from "wavesurfer.js";

const BINS = 100;
export const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];

export class Player {
  constructor(container, audio, { onChange, onError }) {
    this.duration = audio.duration_s;
    this.peaks = audio.peaks;
    this.bins = new Uint8Array(BINS);
    this.speed = SPEEDS.indexOf(1);
    this.loop = false;
    this.last = null; // position of the last forward-playing tick
    this.onChange = onChange;
    this.ws = WaveSurfer.create({
      container,
      url: audio.url,
      peaks: [audio.peaks],
      duration: audio.duration_s,
      height: 56,
      waveColor: "#b8c2d6",
      progressColor: "#2f5bd3",
      cursorColor: "#1d2430",
      barWidth: 2,
      barGap: 1,
      barRadius: 1,
      normalize: true,
      dragToSeek: true,
    });
    this.ws.on("timeupdate", (t) => this.tick(t));
    this.ws.on("interaction", (t) => {
      this.last = this.ws.isPlaying() ? t : null;
    });
    this.ws.on("play", () => {
      this.last = this.ws.getCurrentTime();
      onChange();
    });
    this.ws.on("pause", () => {
      const ended = this.ws.getMediaElement()?.ended;
      this.tick(ended ? this.duration : this.ws.getCurrentTime(), true);
      this.last = null;
      onChange();
    });
    this.ws.on("finish", () => {
      if (this.last !== null) this.mark(this.last, this.duration);
      this.last = null;
      if (this.loop) this.ws.play(0);
      onChange();
    });
    this.ws.on("error", (error) => onError?.(error));
  }

  tick(t, final = false) {
    if (this.last === null || (!final && !this.ws.isPlaying())) return;
    const step = t - this.last;
    if (step >= 0 && step <= 0.5 + SPEEDS[this.speed]) this.mark(this.last, t);
    this.last = t;
  }

  mark(from, to) {
    if (!(this.duration > 0) || to <= from) return;
    const first = Math.max(0, Math.floor((from / this.duration) * BINS));
    const end = Math.min(BINS, Math.ceil((to / this.duration) * BINS));
    for (let i = first; i < end; i++) this.bins[i] = 1;
    this.onChange();
  }

  get listened() {
    return this.bins.reduce((sum, v) => sum + v, 0) / BINS;
  }

  get bits() {
    return this.bins.join("");
  }

  restore(bits) {
    if (typeof bits !== "string" || bits.length !== BINS) return;
    for (let i = 0; i < BINS; i++) this.bins[i] = bits[i] === "1" ? 1 : 0;
  }

  get playing() {
    return this.ws.isPlaying();
  }

  get time() {
    return this.ws.getCurrentTime();
  }

  toggle() {
    return this.ws.playPause();
  }

  pause() {
    this.ws.pause();
  }

  seek(seconds) {
    const playing = this.ws.isPlaying();
    this.last = null;
    this.ws.setTime(Math.min(this.duration, Math.max(0, this.ws.getCurrentTime() + seconds)));
    if (playing) this.last = this.ws.getCurrentTime();
    this.onChange();
  }

  changeSpeed(step) {
    this.speed = Math.min(SPEEDS.length - 1, Math.max(0, this.speed + step));
    this.ws.setPlaybackRate(SPEEDS[this.speed], true);
    this.onChange();
  }

  setSpeed(rate) {
    const index = SPEEDS.indexOf(rate);
    if (index >= 0) this.changeSpeed(index - this.speed);
  }

  toggleLoop() {
    this.loop = !this.loop;
    this.onChange();
  }

  reload(url) {
    // Fresh short-lived URL (the old one expired): keep the position and what was heard.
    const at = this.ws.getCurrentTime();
    this.ws.load(url, [this.peaks], this.duration).then(() => this.ws.setTime(at), () => {});
  }

  destroy() {
    this.ws.destroy();
  }
}

export function clock(seconds) {
  const t = Math.max(0, seconds || 0);
  if (t < 60) return `${t.toFixed(1)} s`;
  const s = Math.floor(t);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
