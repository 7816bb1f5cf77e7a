//! One simulated board: the model's state, the firmware's throttling rule,
//! and the work done so far.

use super::model::{snap_mhz, Model, LEVELS_MHZ, MAX_MHZ};
use super::SAFE_SENSOR_C;

/// Longest internal integration step (s). The update is exact for a
/// constant input, so this bounds timing error (firmware ticks, work), not
/// stability.
const SUBSTEP_S: f64 = 0.05;

/// The firmware evaluates its rule this often (s).
const FIRMWARE_PERIOD_S: f64 = 1.0;

/// The firmware steps the clock down one level when its sensor reads this
/// or more...
const THROTTLE_AT_C: f64 = 80.0;
/// ...and back up one level when it reads below this.
const RELEASE_BELOW_C: f64 = 79.0;
/// At this reading the firmware drops straight to the lowest level: the hard
/// limit no configuration can raise.
const HARD_LIMIT_C: f64 = 85.0;

/// `get_throttled` bits: ARM frequency capped now, throttled now, and their
/// sticky "has occurred" versions.
const CAPPED_NOW: u32 = 0x2;
const THROTTLED_NOW: u32 = 0x4;
const CAPPED_OCCURRED: u32 = 0x2_0000;
const THROTTLED_OCCURRED: u32 = 0x4_0000;

/// Running totals of a board since it was built. A work unit is one busy
/// core-second at 1500 MHz.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    /// Simulated time, in seconds.
    pub elapsed_s: f64,
    /// Work done: busy core-seconds × clock / 1500 MHz.
    pub work: f64,
    /// The work the same busy core-seconds would have done at 1500 MHz.
    pub unthrottled_work: f64,
    /// Seconds during which the firmware held the clock below 1500 MHz.
    pub firmware_throttled_s: f64,
    /// Seconds during which the (quantised) sensor read above
    /// [`SAFE_SENSOR_C`].
    pub above_safe_s: f64,
    /// The highest (quantised) sensor reading seen, in °C.
    pub peak_sensor_c: f64,
}

impl Totals {
    /// Work done as a fraction of the unthrottled work (`1.0` when nothing
    /// ran).
    pub fn fraction(&self) -> f64 {
        if self.unthrottled_work > 0.0 {
            self.work / self.unthrottled_work
        } else {
            1.0
        }
    }
}

/// A simulated Pi 4B: board temperature, fast pole, the firmware's clock
/// level, the fan, and the totals.
///
/// Pure and deterministic: time only moves in [`Board::step`], by the
/// simulated seconds the caller passes.
#[derive(Debug, Clone)]
pub struct Board {
    model: Model,
    ambient_c: f64,
    board_c: f64,
    fast_k: f64,
    firmware_level: usize,
    firmware_has_throttled: bool,
    since_firmware_tick_s: f64,
    fan_failed: bool,
    sensors_lost: bool,
    cap_mhz: u32,
    totals: Totals,
}

impl Board {
    /// A board at `room_c` plus `stack_k` (the warmer air around the upper
    /// boards of a stack), idle and settled: at its idle steady state, the
    /// firmware at 1500 MHz, no cap, the fan working.
    pub fn new(model: Model, room_c: f64, stack_k: f64) -> Board {
        let ambient_c = room_c + stack_k;
        let board_c = model.steady_board_c(ambient_c, model.idle_w);
        let mut board = Board {
            model,
            ambient_c,
            board_c,
            fast_k: 0.0,
            firmware_level: 0,
            firmware_has_throttled: false,
            since_firmware_tick_s: 0.0,
            fan_failed: false,
            sensors_lost: false,
            cap_mhz: MAX_MHZ,
            totals: Totals::default(),
        };
        board.totals.peak_sensor_c = board.sensor_c();
        board
    }

    /// The model the board was built with (the fan working).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The air around the board: room plus stack offset, in °C.
    pub fn ambient_c(&self) -> f64 {
        self.ambient_c
    }

    /// Advances simulated time by `dt_s` seconds with `busy_cores` cores
    /// running (clamped to `0..=cores`; fractions are time-averaged) and
    /// the cpufreq cap `cap_mhz` (snapped down to a level).
    ///
    /// Any `dt_s` is fine: the board integrates in steps of at most 50 ms
    /// and applies the firmware rule at each whole simulated second.
    pub fn step(&mut self, dt_s: f64, busy_cores: f64, cap_mhz: u32) {
        let busy_cores = if busy_cores.is_nan() { 0.0 } else { busy_cores.clamp(0.0, f64::from(self.model.cores)) };
        self.cap_mhz = snap_mhz(cap_mhz);
        let mut left_s = dt_s.max(0.0);
        // Leftovers below a nanosecond are float noise from the caller's
        // arithmetic, not time.
        while left_s > 1e-9 {
            let until_tick_s = FIRMWARE_PERIOD_S - self.since_firmware_tick_s;
            let h = SUBSTEP_S.min(left_s).min(until_tick_s);
            self.integrate(h, busy_cores);
            left_s -= h;
            self.since_firmware_tick_s += h;
            if self.since_firmware_tick_s >= FIRMWARE_PERIOD_S - 1e-9 {
                self.since_firmware_tick_s = 0.0;
                self.firmware_tick();
            }
        }
    }

    /// One internal step of `h` seconds at constant power: exact
    /// exponential updates of both poles, then the totals.
    fn integrate(&mut self, h: f64, busy_cores: f64) {
        let thermal = self.thermal_model();
        let clock_mhz = self.clock_mhz();
        let power_w = thermal.power_w(busy_cores, clock_mhz);
        let board_target_c = thermal.steady_board_c(self.ambient_c, power_w);
        self.board_c = board_target_c + (self.board_c - board_target_c) * (-h / thermal.tau_s()).exp();
        let fast_target_k = thermal.r_fast_k_per_w * (power_w - thermal.idle_w);
        self.fast_k = fast_target_k + (self.fast_k - fast_target_k) * (-h / thermal.tau_fast_s).exp();

        let totals = &mut self.totals;
        totals.elapsed_s += h;
        totals.unthrottled_work += busy_cores * h;
        totals.work += busy_cores * h * f64::from(clock_mhz) / f64::from(MAX_MHZ);
        if self.firmware_level > 0 {
            totals.firmware_throttled_s += h;
        }
        let sensor_c = quantise(self.board_c + self.fast_k);
        if sensor_c > SAFE_SENSOR_C {
            totals.above_safe_s += h;
        }
        totals.peak_sensor_c = totals.peak_sensor_c.max(sensor_c);
    }

    /// The firmware's rule, on its own (quantised) reading of the sensor.
    fn firmware_tick(&mut self) {
        let reading_c = self.sensor_c();
        let lowest = LEVELS_MHZ.len() - 1;
        if reading_c >= HARD_LIMIT_C {
            self.firmware_level = lowest;
        } else if reading_c >= THROTTLE_AT_C {
            self.firmware_level = (self.firmware_level + 1).min(lowest);
        } else if reading_c < RELEASE_BELOW_C {
            self.firmware_level = self.firmware_level.saturating_sub(1);
        }
        if self.firmware_level > 0 {
            self.firmware_has_throttled = true;
        }
    }

    /// The model as it behaves now: with the fan's stopped values once the
    /// fan has failed.
    fn thermal_model(&self) -> Model {
        if self.fan_failed {
            self.model.with_fan_stopped()
        } else {
            self.model.clone()
        }
    }

    /// The sensor reading, quantised to whole °C (rounded to nearest): what
    /// `thermal_zone0/temp`, the mailbox and the firmware see.
    pub fn sensor_c(&self) -> f64 {
        quantise(self.true_temp_c())
    }

    /// The die temperature the sensor measures, unquantised: board node plus
    /// fast pole, in °C.
    pub fn true_temp_c(&self) -> f64 {
        self.board_c + self.fast_k
    }

    /// The slow board node alone, in °C.
    pub fn board_temp_c(&self) -> f64 {
        self.board_c
    }

    /// The ARM clock now: the lower of the cap and the firmware's level, in
    /// MHz.
    pub fn clock_mhz(&self) -> u32 {
        self.cap_mhz.min(self.firmware_mhz())
    }

    /// The cpufreq cap of the last step, snapped to a level: the clock the
    /// kernel requests (`scaling_cur_freq`), in MHz.
    pub fn cap_mhz(&self) -> u32 {
        self.cap_mhz
    }

    /// The highest clock the firmware allows now, in MHz.
    pub fn firmware_mhz(&self) -> u32 {
        LEVELS_MHZ[self.firmware_level]
    }

    /// The `get_throttled` word: 0x2 and 0x4 while the firmware holds the
    /// clock below 1500 MHz, 0x20000 and 0x40000 once it ever has.
    pub fn throttled_bits(&self) -> u32 {
        let mut bits = 0;
        if self.firmware_level > 0 {
            bits |= CAPPED_NOW | THROTTLED_NOW;
        }
        if self.firmware_has_throttled {
            bits |= CAPPED_OCCURRED | THROTTLED_OCCURRED;
        }
        bits
    }

    /// Whether the fan is commanded on (the cooling device's `cur_state`).
    /// Stays `true` after [`Board::fail_fan`]: the state is commanded, not
    /// measured.
    pub fn fan_commanded_on(&self) -> bool {
        self.model.fan.is_some_and(|fan| fan.commanded_on)
    }

    /// Whether [`Board::fail_fan`] was called.
    pub fn fan_failed(&self) -> bool {
        self.fan_failed
    }

    /// Stops the fan for good without changing its commanded state: from now
    /// on R and R_fast are the case's fan-off values. No effect on a board
    /// without a fan.
    pub fn fail_fan(&mut self) {
        if self.model.fan.is_some() {
            self.fan_failed = true;
        }
    }

    /// Whether the Linux-side temperature sources are lost (see
    /// [`Board::set_sensors_lost`]).
    pub fn sensors_lost(&self) -> bool {
        self.sensors_lost
    }

    /// Loses (or restores) the temperature sources the agent reads: while
    /// lost, [`Tree::update`](super::Tree::update) removes the zone's `temp`
    /// file and the mailbox file. The firmware keeps its own reading and
    /// keeps throttling.
    pub fn set_sensors_lost(&mut self, lost: bool) {
        self.sensors_lost = lost;
    }

    /// Totals since the board was built.
    pub fn totals(&self) -> Totals {
        self.totals
    }
}

/// Rounds to whole degrees, as a 1 °C sensor reports.
fn quantise(temp_c: f64) -> f64 {
    (temp_c + 0.5).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(name: &str, room_c: f64, stack_k: f64) -> Board {
        Board::new(Model::from_name(name).unwrap(), room_c, stack_k)
    }

    /// Puts the die at `true_c` with no fast-pole rise, at an idle load so the
    /// temperature barely moves within a second.
    fn set_true_temp(board: &mut Board, true_c: f64) {
        board.board_c = true_c;
        board.fast_k = 0.0;
    }

    #[test]
    fn sensor_rounds_to_whole_degrees() {
        let mut board = board("pi4-case-fan-off", 22.0, 0.0);
        for (true_c, reading) in [(74.49, 74.0), (74.5, 75.0), (75.2, 75.0), (79.6, 80.0), (-0.4, 0.0)] {
            set_true_temp(&mut board, true_c);
            assert_eq!(board.sensor_c(), reading, "true {true_c}");
            assert_eq!(board.true_temp_c(), true_c);
        }
    }

    #[test]
    fn idle_steady_temps_match_the_table_at_22() {
        // thermal.md section 3: idle at 22 °C ambient.
        for (name, table_c) in
            [("pi4-bare", 47.0), ("pi4-heatsink", 42.0), ("pi4-case-fan-on", 35.0), ("pi4-case-fan-off", 49.0)]
        {
            let mut board = board(name, 22.0, 0.0);
            board.step(1800.0, 0.0, 1500);
            assert!((board.sensor_c() - table_c).abs() <= 1.0, "{name}: {} vs {table_c}", board.sensor_c());
            assert_eq!(board.totals().firmware_throttled_s, 0.0);
        }
    }

    #[test]
    fn loaded_steady_board_temps_match_the_table_at_22() {
        // The table's 4-core column is the slow node; the bare board and the
        // fan-off case reach the firmware's threshold instead.
        for (name, table_c) in [("pi4-heatsink", 66.0), ("pi4-case-fan-on", 50.0)] {
            let mut board = board(name, 22.0, 0.0);
            board.step(1800.0, 4.0, 1500);
            assert!((board.board_temp_c() - table_c).abs() <= 1.0, "{name}: {} vs {table_c}", board.board_temp_c());
            assert_eq!(board.clock_mhz(), 1500);
        }
        for name in ["pi4-bare", "pi4-case-fan-off"] {
            let mut board = board(name, 22.0, 0.0);
            board.step(1800.0, 4.0, 1500);
            assert!(board.totals().firmware_throttled_s > 0.0, "{name} should reach the firmware's limit");
            assert!(board.totals().peak_sensor_c <= 82.0, "{name}: {}", board.totals().peak_sensor_c);
        }
    }

    #[test]
    fn fan_on_full_load_at_30_settles_near_58() {
        // thermal.md: 30 + 4.5 × 6.2 ≈ 58 °C (the board node); the sensor
        // adds the fast pole's 1.0 K/W × 3.36 W.
        let mut board = board("pi4-case-fan-on", 30.0, 0.0);
        board.step(1800.0, 4.0, 1500);
        assert!((board.board_temp_c() - 58.0).abs() < 0.5, "{}", board.board_temp_c());
        assert_eq!(board.sensor_c(), 61.0);
        assert_eq!(board.totals().firmware_throttled_s, 0.0);
        assert_eq!(board.totals().fraction(), 1.0);
    }

    #[test]
    fn fan_off_idle_to_firmware_throttle_takes_minutes() {
        // thermal.md estimates about 4 min for the board node to reach 80 °C
        // from idle at 30 °C. With the fast pole the sensor jumps about 4 K
        // at once, so the firmware's first throttle comes sooner.
        let mut board = board("pi4-case-fan-off", 30.0, 0.0);
        let mut seconds = 0;
        while board.firmware_mhz() == 1500 {
            board.step(1.0, 4.0, 1500);
            seconds += 1;
            assert!(seconds < 600, "no throttle within 10 minutes");
        }
        assert!((150..=250).contains(&seconds), "first throttle after {seconds} s");
        // The board node on its own would take τ·ln((T∞−T0)/(T∞−80)).
        let model = board.model().clone();
        let start_c = model.steady_board_c(30.0, model.idle_w);
        let end_c = model.steady_board_c(30.0, model.power_w(4.0, 1500));
        let node_s = model.tau_s() * ((end_c - start_c) / (end_c - 80.0)).ln();
        assert!((220.0..=260.0).contains(&node_s), "{node_s}");
    }

    #[test]
    fn firmware_steps_once_per_second_on_the_reading() {
        // Idle at 52.4 + 9.5 × 2.85 ≈ 79.5 °C, readings near 80 drift by
        // millikelvin per second, so each step sees the temperature it is set to.
        let mut board = board("pi4-case-fan-off", 52.4, 0.0);
        set_true_temp(&mut board, 80.0);
        board.step(0.5, 0.0, 1500);
        assert_eq!(board.firmware_mhz(), 1500, "no tick before a whole second");
        board.step(0.5, 0.0, 1500);
        assert_eq!(board.firmware_mhz(), 1000, "reads 80: one level down");
        set_true_temp(&mut board, 80.2);
        board.step(1.0, 0.0, 1500);
        assert_eq!(board.firmware_mhz(), 750);
        set_true_temp(&mut board, 79.2);
        board.step(1.0, 0.0, 1500);
        assert_eq!(board.firmware_mhz(), 750, "reads 79: holds");
        set_true_temp(&mut board, 78.6);
        board.step(1.0, 0.0, 1500);
        assert_eq!(board.firmware_mhz(), 750, "78.6 reads 79: holds");
        set_true_temp(&mut board, 78.4);
        board.step(1.0, 0.0, 1500);
        assert_eq!(board.firmware_mhz(), 1000, "reads 78: one level up");
        set_true_temp(&mut board, 85.2);
        board.step(1.0, 0.0, 1500);
        assert_eq!(board.firmware_mhz(), 600, "reads 85: straight to the lowest level");
        set_true_temp(&mut board, 85.2);
        board.step(1.0, 0.0, 1500);
        assert_eq!(board.firmware_mhz(), 600, "no level below the lowest");
        for expected in [750, 1000, 1500, 1500] {
            set_true_temp(&mut board, 60.0);
            board.step(1.0, 0.0, 1500);
            assert_eq!(board.firmware_mhz(), expected);
        }
    }

    #[test]
    fn clock_is_the_lower_of_cap_and_firmware() {
        let mut board = board("pi4-case-fan-off", 0.0, 0.0);
        board.step(0.1, 4.0, 900);
        assert_eq!(board.cap_mhz(), 750);
        assert_eq!(board.clock_mhz(), 750);
        board.firmware_level = 3;
        assert_eq!(board.clock_mhz(), 600);
        assert_eq!(board.cap_mhz(), 750);
    }

    #[test]
    fn throttled_bits_are_live_and_sticky() {
        let mut board = board("pi4-case-fan-off", 52.4, 0.0);
        assert_eq!(board.throttled_bits(), 0);
        set_true_temp(&mut board, 80.0);
        board.step(1.0, 0.0, 1500);
        assert_eq!(board.throttled_bits(), 0x6_0006);
        set_true_temp(&mut board, 40.0);
        board.step(1.0, 0.0, 1500);
        assert_eq!(board.throttled_bits(), 0x6_0000);
        // A cap the agent sets is not a firmware throttle.
        board.step(1.0, 4.0, 600);
        assert_eq!(board.throttled_bits(), 0x6_0000);
    }

    #[test]
    fn work_counts_busy_core_seconds_at_the_clock() {
        let mut board = board("pi4-case-fan-on", 22.0, 0.0);
        board.step(10.0, 2.0, 1000);
        let totals = board.totals();
        assert!((totals.work - 2.0 * 10.0 * 1000.0 / 1500.0).abs() < 1e-9, "{totals:?}");
        assert!((totals.unthrottled_work - 20.0).abs() < 1e-9);
        assert!((totals.elapsed_s - 10.0).abs() < 1e-9);
        assert!((totals.fraction() - 2.0 / 3.0).abs() < 1e-9);
        // Busy cores beyond the board's are clamped; NaN counts as idle.
        board.step(1.0, 9.0, 1500);
        board.step(1.0, f64::NAN, 1500);
        assert!((board.totals().unthrottled_work - 24.0).abs() < 1e-9);
    }

    #[test]
    fn the_step_size_does_not_change_the_result() {
        let mut coarse = board("pi4-case-fan-off", 30.0, 3.0);
        let mut fine = coarse.clone();
        for _ in 0..60 {
            coarse.step(10.0, 4.0, 1500);
        }
        for _ in 0..6000 {
            fine.step(0.1, 4.0, 1500);
        }
        assert!((coarse.true_temp_c() - fine.true_temp_c()).abs() < 1e-6);
        assert!((coarse.totals().work - fine.totals().work).abs() < 1e-6);
        assert_eq!(coarse.firmware_mhz(), fine.firmware_mhz());
    }

    #[test]
    fn a_failed_fan_raises_the_steady_temperature() {
        let mut board = board("pi4-case-fan-on", 30.0, 3.0);
        board.step(1800.0, 4.0, 1000);
        let fan_ok_c = board.board_temp_c();
        assert!(board.fan_commanded_on());
        board.fail_fan();
        board.step(1800.0, 4.0, 1000);
        assert!(board.fan_failed());
        assert!(board.fan_commanded_on(), "commanded, not measured");
        // R goes from 4.5 to 9.5 K/W at about 4.7 W.
        assert!(board.board_temp_c() > fan_ok_c + 15.0, "{fan_ok_c} -> {}", board.board_temp_c());
    }

    #[test]
    fn fail_fan_without_a_fan_does_nothing() {
        let mut board = board("pi4-heatsink", 22.0, 0.0);
        board.fail_fan();
        assert!(!board.fan_failed());
        assert!(!board.fan_commanded_on());
    }

    #[test]
    fn time_above_the_safe_limit_and_the_peak_are_counted() {
        let mut board = board("pi4-case-fan-off", 30.0, 3.0);
        board.step(600.0, 4.0, 1500);
        let totals = board.totals();
        assert!(totals.above_safe_s > 60.0, "{totals:?}");
        assert!(totals.peak_sensor_c >= 80.0, "{totals:?}");
    }
}
