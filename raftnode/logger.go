package raftnode

import (
	"fmt"
	"log/slog"
)

// raftLogger adapts slog to raft.Logger. Raft's info chatter goes to debug.
type raftLogger struct{ lg *slog.Logger }

func (l raftLogger) Debug(v ...interface{})                 { l.lg.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Debugf(format string, v ...interface{}) { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Info(v ...interface{})                  { l.lg.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Infof(format string, v ...interface{})  { l.lg.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Warning(v ...interface{})               { l.lg.Warn(fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...interface{}) {
	l.lg.Warn(fmt.Sprintf(format, v...))
}
func (l raftLogger) Error(v ...interface{})                 { l.lg.Error(fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...interface{}) { l.lg.Error(fmt.Sprintf(format, v...)) }
func (l raftLogger) Fatal(v ...interface{})                 { l.lg.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (l raftLogger) Fatalf(format string, v ...interface{}) {
	l.lg.Error(fmt.Sprintf(format, v...))
	panic(fmt.Sprintf(format, v...))
}
func (l raftLogger) Panic(v ...interface{}) { panic(fmt.Sprint(v...)) }
func (l raftLogger) Panicf(format string, v ...interface{}) {
	panic(fmt.Sprintf(format, v...))
}
