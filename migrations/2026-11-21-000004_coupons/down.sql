DROP TABLE notifications;
DROP TABLE user_coupons;
DROP TABLE coupons;
