"""Picking databases and tables out of a dump (the layout mariadb-dump 10.11 writes)."""

from __future__ import annotations

import pytest

from database_backup.mysql.logical.sqlfilter import (
    USERS_BEGIN,
    USERS_END,
    Selection,
    SentTracker,
    SqlFilter,
)

DUMP = """/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40103 SET TIME_ZONE='+00:00' */;
-- CHANGE MASTER TO MASTER_LOG_FILE='bin.000002', MASTER_LOG_POS=373;

--
-- Current Database: `a`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `a`;

USE `a`;

--
-- Table structure for table `t`
--

DROP TABLE IF EXISTS `t`;
CREATE TABLE `t` (id INT);
--
-- Dumping data for table `t`
--

INSERT INTO `t` VALUES (1),(2);
/*!50003 CREATE*/ /*!50003 TRIGGER a.tr BEFORE INSERT ON a.t FOR EACH ROW SET @x = 1 */;;
--
-- Table structure for table `u`
--

CREATE TABLE `u` (id INT);
INSERT INTO `u` VALUES (3);
--
-- Temporary table structure for view `v`
--

/*!50001 CREATE VIEW `v` AS SELECT 1 AS `id` */;
--
-- Dumping routines for database 'a'
--

CREATE PROCEDURE `p`() SELECT 1;
--
-- Current Database: `b``q`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `b``q`;

USE `b``q`;
--
-- Table structure for table `t`
--

CREATE TABLE `t` (id INT);
INSERT INTO `t` VALUES (9);
--
-- Current Database: `a`
--

USE `a`;
--
-- Final view structure for view `v`
--

/*!50001 VIEW `v` AS select 1 AS `id` */;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;
-- Dump completed on 2026-11-22
"""
USERS = f"{USERS_BEGIN.decode()}\nCREATE USER IF NOT EXISTS 'r'@'%';\n{USERS_END.decode()}\n"


def kept(selection: Selection, text: str = DUMP + USERS) -> str:
    lines = [line.encode() for line in text.splitlines(keepends=True)]
    return b"".join(SqlFilter(selection).lines(lines)).decode()


def test_everything_without_a_selection():
    assert kept(Selection()) == DUMP + USERS


def test_one_database_keeps_its_tables_views_routines_and_the_session_settings():
    out = kept(Selection.of(databases=["a"]))
    for text in ("SET TIME_ZONE='+00:00'", "USE `a`;", "VALUES (1),(2)", "TRIGGER a.tr",
                 "VALUES (3)", "CREATE VIEW `v`", "VIEW `v` AS select", "PROCEDURE `p`",
                 "@OLD_TIME_ZONE"):  # fmt: skip
        assert text in out
    assert "VALUES (9)" not in out
    assert "USE `b``q`" not in out  # only its marker comment passes
    assert "CREATE USER" not in out


def test_one_table_keeps_only_that_table_and_its_trigger():
    out = kept(Selection.of(tables=["a.t"]))
    assert "USE `a`;" in out
    assert "VALUES (1),(2)" in out
    assert "TRIGGER a.tr" in out
    for text in ("VALUES (3)", "VALUES (9)", "CREATE VIEW", "PROCEDURE", "CREATE USER"):
        assert text not in out
    assert "@OLD_TIME_ZONE" in out


def test_quoted_names():
    out = kept(Selection.of(tables=["b`q.t"]))
    assert "VALUES (9)" in out
    assert "VALUES (1),(2)" not in out


def test_selection_rules():
    with pytest.raises(ValueError, match=r"database\.table"):
        Selection.of(tables=["orders"])
    selection = Selection.of(databases=["x"], tables=["y.t"])
    assert selection.wants("x", None)
    assert selection.wants("y", "t")
    assert not selection.wants("y", None)
    assert selection.wants_database("y")
    assert not selection.everything


def test_sent_tracker_names_the_databases_and_the_users_sent():
    tracker = SentTracker()
    for line in DUMP.encode().splitlines(keepends=True):
        tracker.see(line)
    assert tracker.changed
    assert tracker.databases == ["a", "b`q"]
    assert "the data was changed: the statements of database(s) a, b`q were" in tracker.report()


def test_sent_tracker_with_only_the_header_sent_reports_nothing_applied():
    tracker = SentTracker()
    tracker.see(b"/*!40103 SET TIME_ZONE='+00:00' */;\n")
    assert not tracker.changed
    assert tracker.report().startswith("nothing was applied")
    tracker.see(USERS_BEGIN + b"\n")
    assert tracker.changed
    assert "of the users and grants were applied" in tracker.report()


def test_sent_tracker_names_only_the_databases_whose_statements_were_sent():
    tracker = SentTracker()
    for line in SqlFilter(Selection.of(["b`q"])).lines(
        line.encode() for line in (DUMP + USERS).splitlines(keepends=True)
    ):
        tracker.see(line)
    assert tracker.databases == ["b`q"]  # `a`'s markers were passed on, none of its statements
    assert not tracker.users
